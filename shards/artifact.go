package shards

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"

	"github.com/spate-dev/spate/accounting"
	"github.com/spate-dev/spate/report"
)

// Artifact is what one shard leaves of a distributed run: its own account
// and everything Merge needs to make the run's from all of them. Each shard
// writes its artifact into DIR/shards/<index>/ and hands it to the
// coordinator, which keeps a copy of every shard's under its own DIR, so
// spate merge can do again what the coordinator did.
type Artifact struct {
	Meta Meta `json:"meta"`
	// Results is the shard's own account as its engine returned it: the
	// scenario's identity, thresholds, target rates and faults as this
	// shard saw them. Its counts are partial.
	Results *report.Results `json:"results"`
	// Intervals are the shard's report intervals with their histograms.
	Intervals []intervalReport `json:"intervals"`
	// Faults are the faults of Results.Chaos by their place in the
	// scenario's timeline.
	Faults []Fault `json:"faults"`
	// Run holds what only the coordinator observed (shard 0's artifact).
	Run *Observations `json:"run,omitempty"`
	// State is the shard's accounting, written beside shard.json.
	State *accounting.State `json:"-"`
}

// Meta identifies a shard's artifact and says what the shard was.
type Meta struct {
	Version int    `json:"version"` // ProtocolVersion
	RunID   string `json:"run_id"`
	Digest  string `json:"digest"` // of the scenario file
	Index   int    `json:"index"`
	Count   int    `json:"count"`
	Host    string `json:"host"`
	// Producers and Consumers this shard ran, by id.
	Producers []int `json:"producers"`
	Consumers []int `json:"consumers"`
	// T0 is the run's start (Unix ns, the coordinator's clock); Started
	// when this shard's traffic started, on the same clock.
	T0      int64 `json:"t0"`
	Started int64 `json:"started"`
	// The shard's clock offset from the coordinator's (coordinator −
	// shard, ns) and its uncertainty; zero on the coordinator.
	OffsetNS      int64 `json:"offset_ns"`
	UncertaintyNS int64 `json:"uncertainty_ns"`
	// AtTrafficEnd are the shard's running counts when its traffic ended.
	AtTrafficEnd accounting.Counts `json:"at_traffic_end"`
	// Partial, when set, says why this is not the shard's own final
	// account but what the coordinator knew of it (its last report): the
	// run is incomplete.
	Partial string `json:"partial,omitempty"`
}

// Fault is one fault of a shard's account, with its place in the
// scenario's timeline (the same on every shard).
type Fault struct {
	Index int `json:"index"`
	report.FaultResult
}

// Observations are what the coordinator saw of the whole run.
type Observations struct {
	// Backlog is the run's backlog at the end of each interval, by index:
	// deliveries owed to subscriptions for messages acked on any shard.
	Backlog map[int]int64 `json:"backlog"`
	// ReceivedAtTrafficEnd is the run's received (the union of every
	// shard's) when every shard's traffic had ended: achieved_rate's
	// numerator.
	ReceivedAtTrafficEnd int64 `json:"received_at_traffic_end"`
}

// Artifact files in a shard's directory.
const (
	artifactFile = "shard.json"
	stateFile    = "accounting.state"
)

// ShardDir is where the artifact of shard index goes under a report
// directory.
func ShardDir(dir string, index int) string {
	return filepath.Join(dir, "shards", strconv.Itoa(index))
}

// maxStateBytes bounds a state read from a file or a shard: about 8
// billion message deliveries' bits, far beyond what a shard holds.
const maxStateBytes = 1 << 30

// maxArtifactBytes bounds shard.json (intervals with histograms).
const maxArtifactBytes = 256 << 20

// Write writes a into dir (made if missing): shard.json and the state.
func (a *Artifact) Write(dir string) error {
	meta, state, err := a.encode()
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if err := writeFile(filepath.Join(dir, artifactFile), meta); err != nil {
		return err
	}
	return writeFile(filepath.Join(dir, stateFile), state)
}

// encode returns shard.json's bytes and the state's.
func (a *Artifact) encode() (meta, state []byte, err error) {
	if a.State == nil {
		return nil, nil, errors.New("shards: an artifact without its accounting state")
	}
	meta, err = json.Marshal(a)
	if err != nil {
		return nil, nil, err
	}
	var b bytes.Buffer
	if _, err := a.State.WriteTo(&b); err != nil {
		return nil, nil, err
	}
	return meta, b.Bytes(), nil
}

// decodeArtifact reads an artifact from its two parts.
func decodeArtifact(meta io.Reader, state io.Reader) (*Artifact, error) {
	var a Artifact
	dec := json.NewDecoder(io.LimitReader(meta, maxArtifactBytes))
	if err := dec.Decode(&a); err != nil {
		return nil, fmt.Errorf("%s: %w", artifactFile, err)
	}
	if a.Meta.Version != ProtocolVersion {
		return nil, fmt.Errorf("%s: written by protocol version %d, this spate reads %d", artifactFile, a.Meta.Version, ProtocolVersion)
	}
	if a.Results == nil {
		return nil, fmt.Errorf("%s: no results", artifactFile)
	}
	s, err := accounting.ReadState(state, maxStateBytes)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", stateFile, err)
	}
	a.State = s
	return &a, nil
}

// ReadArtifact reads the artifact in dir, a shard's directory (DIR/shards/i).
func ReadArtifact(dir string) (*Artifact, error) {
	mf, err := os.Open(filepath.Join(dir, artifactFile))
	if err != nil {
		return nil, err
	}
	defer mf.Close()
	sf, err := os.Open(filepath.Join(dir, stateFile))
	if err != nil {
		return nil, err
	}
	defer sf.Close()
	a, err := decodeArtifact(mf, sf)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", dir, err)
	}
	return a, nil
}

// FindArtifacts returns the shard directories under each of dirs: a
// shard's directory itself (holding shard.json), or a report directory
// whose shards/ holds them.
func FindArtifacts(dirs ...string) ([]string, error) {
	var out []string
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, artifactFile)); err == nil {
			out = append(out, d)
			continue
		}
		entries, err := os.ReadDir(filepath.Join(d, "shards"))
		if err != nil {
			return nil, fmt.Errorf("%s holds no shard artifact (%s) and no shards/ directory", d, artifactFile)
		}
		found := false
		for _, e := range entries {
			sub := filepath.Join(d, "shards", e.Name())
			if _, err := os.Stat(filepath.Join(sub, artifactFile)); e.IsDir() && err == nil {
				out = append(out, sub)
				found = true
			}
		}
		if !found {
			return nil, fmt.Errorf("%s/shards holds no shard artifacts", d)
		}
	}
	return out, nil
}

func writeFile(path string, b []byte) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
