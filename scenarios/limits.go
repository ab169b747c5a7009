package scenarios

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"strings"
	"syscall"
	"time"
	"unicode"
	"unicode/utf8"

	"gopkg.in/yaml.v3"
)

// Limits. spate refuses at validation, with the position and the reason,
// any scenario that would take more time or memory than one process can
// give it: a run must never hang or exhaust the machine whatever its
// input. The limits on load (rate, producers, consumers, ...) are per
// process: a scenario run as N shards spreads its actors over N processes
// (Loader.Shards), so each shard checks its own share.
const (
	// MaxFileBytes bounds a scenario or sweep file: they are hand-written
	// configuration (the largest example is a few KiB), and the YAML
	// parser holds the whole document in memory.
	MaxFileBytes = 1 << 20
	// MaxNodes bounds the YAML nodes of one document with every alias
	// followed: aliases of aliases multiply (a few hundred bytes can
	// stand for billions of nodes), and decoding visits each.
	MaxNodes = 100_000
	// MaxSweepNodes bounds the nodes of all of a sweep's points together
	// (each point is a copy of the base scenario, kept for the run).
	MaxSweepNodes = 500_000
	// FIFOWait is how long spate waits for the writer of a named pipe
	// given as a file (`spate validate <(gen)`) before giving up.
	FIFOWait = 5 * time.Second

	// MaxRatePerProcess bounds any target rate one process must schedule,
	// in messages per second. The pacer handles each message (1,000,000/s
	// end to end with the memory driver on 2 cores); above this no host
	// keeps the schedule, and a run would only count unsent messages.
	MaxRatePerProcess = 100e6
	// MaxProducersPerProcess and MaxConsumersPerProcess bound the actors
	// of one process: each is a client of its own (connections, buffers,
	// about 150 KiB with the memory driver and more with real clients)
	// and a goroutine; past this the harness, not the system, is what is
	// measured. Run more as shards.
	MaxProducersPerProcess = 1000
	MaxConsumersPerProcess = 1000
	// MaxProducerSubscriptions bounds producers × subscriptions per
	// process: the tracker keeps a set of received sequence numbers (a
	// few KiB at least) for every pair.
	MaxProducerSubscriptions = 10_000
	// MaxInFlightPerProcess bounds a max phase's in-flight window: every
	// unconfirmed message is held by the client until its outcome.
	MaxInFlightPerProcess = 1_000_000
	// MaxPhases bounds the traffic list, and MaxSegments the linear
	// pieces the phases compile into (a step phase is one per stair):
	// the pacer of every producer walks them.
	MaxPhases   = 1000
	MaxSegments = 100_000
	// MaxFaults bounds the fault occurrences of the chaos list (an
	// action with every repeats): each waits on a timer of its own and
	// has an entry in the results.
	MaxFaults = 10_000
	// MaxIntervals bounds the report intervals of a run (traffic ÷
	// report.interval): each is kept in memory, in results.json and in
	// the HTML charts.
	MaxIntervals = 100_000
	// MaxKeys bounds message.keys.count: the keys are made once, up front.
	MaxKeys = 1_000_000
	// MaxMessageSize bounds message sizes: above what any supported
	// system accepts by default (Kafka 1 MB, RabbitMQ 16 MiB on 4.x,
	// EventBridge 256 KB).
	MaxMessageSize = 16 << 20
	// MaxNameLength bounds a scenario's name, which becomes part of a
	// directory name (at most 255 bytes) and of every report.
	MaxNameLength = 200
)

// ErrTooLarge is returned by ReadFile for a file over MaxFileBytes.
var ErrTooLarge = fmt.Errorf("larger than %d KiB, the most spate reads (a scenario is hand-written configuration)", MaxFileBytes>>10)

// ReadFile reads a scenario or sweep file, bounded: a regular file of at
// most MaxFileBytes, or a named pipe or device whose writer finishes
// within FIFOWait (a FIFO nobody writes to reads as empty rather than
// blocking). Directories are refused.
func ReadFile(path string) ([]byte, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if st.IsDir() {
		return nil, errors.New("is a directory, not a scenario file")
	}
	// O_NONBLOCK: opening a FIFO for reading would otherwise wait for a
	// writer; with it, Go's poller serves reads and deadlines.
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if !st.Mode().IsRegular() {
		_ = f.SetReadDeadline(time.Now().Add(FIFOWait)) // unsupported for some devices: the size bound still holds
	}
	data, err := io.ReadAll(io.LimitReader(f, MaxFileBytes+1))
	switch {
	case errors.Is(err, os.ErrDeadlineExceeded):
		return nil, fmt.Errorf("nothing more was written to it within %s", FIFOWait)
	case errors.Is(err, syscall.EAGAIN):
		return nil, errors.New("its writer gave nothing to read")
	case err != nil:
		return nil, err
	case len(data) > MaxFileBytes:
		return nil, ErrTooLarge
	}
	return data, nil
}

// ReadProblem turns a ReadFile error into a Problem naming file (the
// message without the path, which the problem names already).
func ReadProblem(file string, err error) Problem {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		err = pe.Err
	}
	return Problem{File: file, Message: err.Error()}
}

// parseYAML parses one YAML document of data, refusing a document that
// expands (aliases followed) to more than maxNodes nodes. what names the
// document in messages ("a scenario file"). It returns the document node,
// or the problems.
func parseYAML(file string, data []byte, what string) (*yaml.Node, Problems) {
	if len(data) > MaxFileBytes {
		return nil, Problems{{File: file, Message: ErrTooLarge.Error()}}
	}
	var doc yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, Problems{{File: file, Message: "the file is empty"}}
		}
		return nil, Problems{syntaxProblem(file, data, err)}
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err == nil {
		return nil, Problems{{File: file, Line: extra.Line, Column: extra.Column, Message: what + " holds one YAML document; found a second (---)"}}
	}
	if p, ok := checkExpansion(file, &doc, MaxNodes); !ok {
		return nil, Problems{p}
	}
	return &doc, nil
}

// Expanded returns how many nodes n stands for with every alias followed,
// counting up to limit+1 at most, and the node at which the count first
// passed limit (nil when it did not): the alias that made it pass, or
// the node of a document too large by itself. An alias to one of its own
// ancestors counts as more than limit.
func Expanded(n *yaml.Node, limit int) (int, *yaml.Node) {
	memo := map[*yaml.Node]int{}
	const visiting = -1
	var blame *yaml.Node
	var size func(n *yaml.Node) int
	size = func(n *yaml.Node) int {
		if n == nil {
			return 0
		}
		if v, ok := memo[n]; ok {
			if v == visiting { // a cycle: endless when expanded
				return limit + 1
			}
			return v
		}
		memo[n] = visiting
		total := 1
		if n.Kind == yaml.AliasNode && n.Alias != nil {
			total = size(n.Alias)
		}
		for _, c := range n.Content {
			total += size(c)
			if total > limit {
				if blame == nil {
					blame = c
				}
				total = limit + 1
				break
			}
		}
		if total > limit && blame == nil {
			blame = n
		}
		memo[n] = total
		return total
	}
	return size(n), blame
}

// checkExpansion reports a document over limit nodes as a Problem at the
// node to blame.
func checkExpansion(file string, doc *yaml.Node, limit int) (Problem, bool) {
	n, blame := Expanded(doc, limit)
	if n <= limit {
		return Problem{}, true
	}
	p := Problem{File: file}
	if blame != nil {
		p.Line, p.Column = blame.Line, blame.Column
	}
	if blame != nil && blame.Kind == yaml.AliasNode {
		p.Message = fmt.Sprintf("the alias *%s makes the document expand to more than %s YAML nodes (aliases of aliases multiply), the most spate reads; repeat less through aliases",
			blame.Value, groupThousands(limit))
	} else {
		p.Message = fmt.Sprintf("the document has more than %s YAML nodes, the most spate reads", groupThousands(limit))
	}
	return p, false
}

// processes returns how many processes share the scenario's load.
func (l *Loader) processes() int { return max(l.Shards, 1) }

// perProcess is the share of n actors the busiest of p processes gets
// when actor i runs on process i mod p.
func perProcess(n, p int) int { return (n + p - 1) / p }

// checkLoad refuses a scenario whose load one of processes processes
// cannot carry: rates, producers, consumers, the tracker's sets, in-flight
// windows, phases, segments, faults, intervals, keys and message sizes.
// Each problem names the limit and why it exists.
func checkLoad(d *Decoder, root *yaml.Node, s *Scenario, processes int) {
	processes = max(processes, 1)
	shards := ""
	if processes > 1 {
		shards = fmt.Sprintf(" (a shard's share of %d)", processes)
	}
	prods := perProcess(s.Producers, processes)
	if s.Producers > 0 && prods > MaxProducersPerProcess {
		d.Errorf(Child(root, "producers"), "producers", "%d producers%s is more than the %d one process runs (each is a client and a goroutine of its own); run more processes as shards",
			prods, shards, MaxProducersPerProcess)
	}
	if cons := perProcess(s.Consumers, processes); s.Consumers > 0 && cons > MaxConsumersPerProcess {
		d.Errorf(Child(root, "consumers"), "consumers", "%d consumers%s is more than the %d one process runs (each is a client and a goroutine of its own); run more processes as shards",
			cons, shards, MaxConsumersPerProcess)
	}
	if subs := max(s.Subscriptions, 1); subs > 1 && prods <= MaxProducersPerProcess && prods*subs > MaxProducerSubscriptions {
		d.Errorf(Child(root, "subscriptions"), "subscriptions", "%d producers × %d subscriptions is more than %s pairs per process (the tracker keeps a set of received messages for each pair); use fewer producers or subscriptions",
			prods, subs, groupThousands(MaxProducerSubscriptions))
	}
	// Share of the traffic: producer i sends messages i, i+n, ... so the
	// busiest process sends prods/producers of every rate.
	share := 1.0
	if s.Producers > 0 {
		share = float64(prods) / float64(s.Producers)
	}
	tn := Child(root, "traffic")
	for i := range s.Traffic {
		if tn == nil || tn.Kind != yaml.SequenceNode || i >= len(tn.Content) {
			break
		}
		p := &s.Traffic[i]
		pn := resolve(tn.Content[i])
		field := fmt.Sprintf("traffic[%d]", i)
		for _, r := range phaseRates(p) {
			if v := float64(r.rate) * share; v > MaxRatePerProcess {
				d.Errorf(at(Child(pn, p.Kind()), r.key), field+"."+p.Kind()+"."+r.key,
					"%s%s is more than the %s messages/s one process can schedule (each message is paced individually; about 1,000,000/s is what a 2-core host sends); run it as shards",
					r.rate, shards, groupThousands(int(MaxRatePerProcess)))
			}
		}
		if p.Max != nil && perProcess(p.Max.InFlight, processes) > MaxInFlightPerProcess {
			d.Errorf(at(Child(pn, "max"), "in-flight"), field+".max.in-flight", "%d messages in flight is more than the %s one process holds (the client keeps each until its outcome)",
				p.Max.InFlight, groupThousands(MaxInFlightPerProcess))
		}
	}
	if dur := s.profile.Duration; dur > 0 && s.Report.Interval > 0 && !d.hasProblemsIn("traffic") {
		if n := float64(dur) / float64(s.Report.Interval); n > MaxIntervals {
			need := time.Duration(math.Ceil(float64(dur)/MaxIntervals/float64(time.Second))) * time.Second
			node := Child(Child(root, "report"), "interval")
			if node == nil {
				node = tn
			}
			d.Errorf(node, "report.interval", "the traffic lasts %s: at report.interval %s that is %s intervals, more than the %s a run keeps (in memory, results.json and the charts); set report.interval: %s or longer",
				dur, s.Report.Interval, groupThousands(int(math.Min(n, math.MaxInt32))), groupThousands(MaxIntervals), need)
		}
	}
	if s.Message.Keys.Count > MaxKeys {
		d.Errorf(at(Child(Child(root, "message"), "keys"), "count"), "message.keys.count", "%d keys is more than the %s spate makes up front; fewer distinct keys spread as evenly",
			s.Message.Keys.Count, groupThousands(MaxKeys))
	}
	if sz := s.Message.Size.Largest(); sz > MaxMessageSize {
		d.Errorf(at(Child(root, "message"), "size"), "message.size", "%s is larger than the %s spate sends (more than any supported system accepts by default)",
			sz, Size(MaxMessageSize))
	}
}

// checkTraffic refuses more phases than MaxPhases, or phases that compile
// into more than MaxSegments segments, before the profile is compiled. It
// reports whether the traffic can be compiled.
func checkTraffic(d *Decoder, tn *yaml.Node, phases []Phase) bool {
	if tn == nil || tn.Kind != yaml.SequenceNode {
		return true
	}
	if len(tn.Content) > MaxPhases {
		d.Errorf(resolve(tn.Content[MaxPhases]), fmt.Sprintf("traffic[%d]", MaxPhases), "the traffic has %s phases, more than the %d spate runs; a long profile is a few ramp or step phases",
			groupThousands(len(tn.Content)), MaxPhases)
		return false
	}
	segments := 0
	for i := range phases {
		if p := &phases[i]; p.Step != nil {
			segments += max(min(p.Step.Steps, MaxSteps), 0)
		} else {
			segments += 5 // a spike's pieces, at most
		}
		if segments > MaxSegments && i < len(tn.Content) {
			d.Errorf(resolve(tn.Content[i]), fmt.Sprintf("traffic[%d]", i), "the traffic compiles into more than %s segments (a step phase is one per stair), more than spate paces; use fewer steps, or ramps",
				groupThousands(MaxSegments))
			return false
		}
	}
	return true
}

// checkFaults refuses a chaos list that makes more than MaxFaults fault
// occurrences (counting the repeats of every action with every).
func checkFaults(d *Decoder, cn *yaml.Node, s *Scenario) {
	if cn == nil || cn.Kind != yaml.SequenceNode {
		return
	}
	total := Duration(s.profile.Duration)
	count := 0.0
	for i := range s.Chaos {
		a := &s.Chaos[i]
		n := 1.0
		if a.Every != nil && *a.Every > 0 && a.At < total {
			n = math.Ceil(float64(total-a.At) / float64(*a.Every))
		}
		if count += n; count > MaxFaults && i < len(cn.Content) {
			d.Errorf(at(resolve(cn.Content[i]), "every"), fmt.Sprintf("chaos[%d]", i), "the chaos list makes more than %s faults (counting each repeat of every), more than a run schedules; repeat less often",
				groupThousands(MaxFaults))
			return
		}
	}
}

// rateField is a rate of a phase and the key that gave it.
type rateField struct {
	key  string
	rate Rate
}

// phaseRates lists the rates a phase asks for, by their keys.
func phaseRates(p *Phase) []rateField {
	switch {
	case p.Constant != nil:
		return []rateField{{"rate", p.Constant.Rate}}
	case p.Ramp != nil:
		return []rateField{{"from", p.Ramp.From}, {"to", p.Ramp.To}}
	case p.Step != nil:
		return []rateField{{"from", p.Step.From}, {"to", p.Step.To}}
	case p.Spike != nil:
		return []rateField{{"base", p.Spike.Base}, {"peak", p.Spike.Peak}}
	case p.FindMax != nil:
		return []rateField{{"start", p.FindMax.Start}, {"max", p.FindMax.Max}}
	}
	return nil
}

// Largest is the largest size the distribution can give.
func (s SizeDist) Largest() Size {
	out := s.Fixed
	if s.Uniform != nil {
		out = max(out, s.Uniform.Max)
	}
	for _, w := range s.Weighted {
		out = max(out, w.Size)
	}
	return out
}

// checkName refuses a name that cannot be shown on one line or become part
// of a directory name: control characters (NUL, newline, ...), invalid
// UTF-8, or more than MaxNameLength characters. The default report
// directory is made from it by DirName.
func checkName(d *Decoder, n *yaml.Node, field, name string) {
	switch {
	case !utf8.ValidString(name):
		d.Errorf(n, field, "is not valid UTF-8")
	case utf8.RuneCountInString(name) > MaxNameLength:
		d.Errorf(n, field, "is %d characters long; at most %d (it names the report directory)", utf8.RuneCountInString(name), MaxNameLength)
	default:
		for _, r := range name {
			if unicode.IsControl(r) {
				d.Errorf(n, field, "contains the control character %U; a name is one line of printable text", r)
				return
			}
		}
	}
}

// hasProblemsIn reports whether a problem was recorded for field or a
// field under it.
func (d *Decoder) hasProblemsIn(field string) bool {
	for _, p := range d.problems {
		if p.Field == field || strings.HasPrefix(p.Field, field+".") || strings.HasPrefix(p.Field, field+"[") {
			return true
		}
	}
	return false
}

// groupThousands writes n with commas between groups of three digits.
func groupThousands(n int) string {
	s := fmt.Sprint(n)
	out := make([]byte, 0, len(s)+len(s)/3)
	for i := range s {
		if i > 0 && (len(s)-i)%3 == 0 && s[i-1] != '-' {
			out = append(out, ',')
		}
		out = append(out, s[i])
	}
	return string(out)
}
