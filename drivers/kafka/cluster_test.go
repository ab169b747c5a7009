package kafka_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/spate-dev/spate/drivers"
	"github.com/spate-dev/spate/drivers/kafka"
)

func TestStartClusterOptions(t *testing.T) {
	for _, tc := range []struct {
		name string
		o    kafka.ClusterOptions
		want []string // every problem is listed
	}{
		{"too many brokers", kafka.ClusterOptions{Brokers: 17}, []string{"Brokers must be within 1..16, got 17"}},
		{"ports and brokers disagree", kafka.ClusterOptions{Brokers: 2, Ports: []int{20001, 20002, 20003}},
			[]string{"3 Ports for 2 Brokers"}},
		{"bad ports", kafka.ClusterOptions{Ports: []int{0, 70000, 20001, 20001}},
			[]string{"Ports[0] = 0 is not a port", "Ports[1] = 70000 is not a port", "port 20001 appears twice"}},
		{"log level", kafka.ClusterOptions{LogLevel: "loud"}, []string{`LogLevel "loud" is not one of none, error`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := kafka.StartCluster(tc.o)
			if err == nil {
				c.Close()
				t.Fatal("started")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
}

// A cluster in a caller's directory keeps its records through a
// whole-cluster kill and through a new cluster started on that directory,
// and Close keeps the directory; a temporary one is removed.
func TestClusterDirKeepsData(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data") // created by StartCluster
	c, err := kafka.StartCluster(kafka.ClusterOptions{Brokers: 2, Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if got := c.Addrs(); len(got) != 2 || !strings.HasPrefix(got[0], "127.0.0.1:") {
		t.Fatalf("Addrs = %v, want two 127.0.0.1 addresses", got)
	}
	if c.Dir() != dir {
		t.Errorf("Dir = %q, want %q", c.Dir(), dir)
	}
	addrs := c.Addrs()
	produce(t, addrs, "kept", 50)
	if err := c.Restart(context.Background(), drivers.AllBrokers, drivers.Kill, 0); err != nil {
		t.Fatal(err)
	}
	if got := c.Addrs(); strings.Join(got, ",") != strings.Join(addrs, ",") {
		t.Errorf("after a restart Addrs = %v, want %v", got, addrs)
	}
	if n := consume(t, addrs, "kept", 50); n != 50 {
		t.Fatalf("after a kill read %d records, want 50", n)
	}
	c.Close()
	if _, err := os.Stat(dir); err != nil {
		t.Fatalf("Close removed the caller's directory: %v", err)
	}
	for _, a := range addrs {
		if conn, err := net.DialTimeout("tcp", a, time.Second); err == nil {
			conn.Close()
			t.Errorf("%s still listens after Close", a)
		}
	}

	again, err := kafka.StartCluster(kafka.ClusterOptions{Brokers: 2, Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer again.Close()
	if n := consume(t, again.Addrs(), "kept", 50); n != 50 {
		t.Fatalf("a new cluster on the directory read %d records, want 50", n)
	}

	tmp, err := kafka.StartCluster(kafka.ClusterOptions{Brokers: 1})
	if err != nil {
		t.Fatal(err)
	}
	tmpDir := tmp.Dir()
	if _, err := os.Stat(tmpDir); err != nil {
		t.Fatal(err)
	}
	tmp.Close()
	if _, err := os.Stat(tmpDir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the temporary directory %s is still there after Close (%v)", tmpDir, err)
	}
}

// produce creates topic (three partitions, replicated on every broker, as
// far as there are three) and writes n records to it with acks from all
// replicas.
func produce(t *testing.T, addrs []string, topic string, n int) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...), kgo.DefaultProduceTopic(topic))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	resp, err := kadm.NewClient(cl).CreateTopic(ctx, 3, int16(min(3, len(addrs))), nil, topic)
	if err == nil {
		err = resp.Err
	}
	if err != nil {
		t.Fatalf("creating topic %s: %v", topic, err)
	}
	for i := range n {
		if err := cl.ProduceSync(ctx, kgo.StringRecord(fmt.Sprint("record-", i))).FirstErr(); err != nil {
			t.Fatalf("producing record %d: %v", i, err)
		}
	}
}

// consume reads topic from its start until it has want records or 30s
// pass, and returns how many distinct records it read.
func consume(t *testing.T, addrs []string, topic string, want int) int {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	seen := map[string]bool{}
	for len(seen) < want && ctx.Err() == nil {
		fs := cl.PollFetches(ctx)
		fs.EachRecord(func(r *kgo.Record) { seen[string(r.Value)] = true })
	}
	return len(seen)
}
