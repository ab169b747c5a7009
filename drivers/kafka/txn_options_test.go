package kafka_test

import (
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/spate-dev/spate/drivers/drivertest"
	"github.com/spate-dev/spate/drivers/kafka"
	"github.com/spate-dev/spate/scenarios"
)

func TestTransactionOptions(t *testing.T) {
	str := func(s string) *string { return &s }
	o, ps := decode(t, str("transactions: {}"))
	drivertest.CheckProblems(t, ps, nil)
	want := kafka.DefaultTransactionOptions()
	if got := o.(kafka.Options).Transactions; got == nil || !reflect.DeepEqual(*got, want) {
		t.Errorf("transactions: {} = %+v, want %+v", got, want)
	}
	if want.Records != 100 || want.MaxDuration != 100*time.Millisecond || want.Timeout != 10*time.Second || want.Abort != 0 || want.Seed != 1 {
		t.Errorf("defaults %+v", want)
	}
	o, ps = decode(t, str("transactions: {id-prefix: shop, records: 10, max-duration: 1s, abort: 20%, seed: 3, timeout: 30s}"))
	drivertest.CheckProblems(t, ps, nil)
	want = kafka.TransactionOptions{IDPrefix: "shop", Records: 10, MaxDuration: time.Second, Abort: 0.2, Seed: 3, Timeout: 30 * time.Second}
	if got := o.(kafka.Options).Transactions; got == nil || !reflect.DeepEqual(*got, want) {
		t.Errorf("transactions = %+v, want %+v", got, want)
	}
	if o, _ := decode(t, nil); o.(kafka.Options).Transactions != nil {
		t.Error("transactions without the block")
	}
}

func TestTransactionOptionProblems(t *testing.T) {
	for _, tc := range []struct {
		src  string
		want []string
	}{
		{"transactions: {records: 0}", []string{"test.yaml:1:25: driver.kafka.transactions.records: must be a whole number from 1 to 1000000, got 0"}},
		{"transactions: {abort: 120%}", []string{"test.yaml:1:23: driver.kafka.transactions.abort: must be a fraction from 0 to 1 (or 0% to 100%), got 1.2"}},
		{"transactions: {max-duration: 0s}", []string{"test.yaml:1:30: driver.kafka.transactions.max-duration: must be from 1ms to 1h, got 0s"}},
		{"transactions: {timeout: 1h}", []string{"test.yaml:1:25: driver.kafka.transactions.timeout: must be from 100ms to 15m, got 1h0m0s"}},
		{"transactions: {id-prefix: ' '}", []string{"test.yaml:1:27: driver.kafka.transactions.id-prefix: must not be empty; leave id-prefix out for spate-<run id>"}},
		{"transactions: {recrods: 5}", []string{`~test.yaml:1:16: driver.kafka.transactions.recrods: unknown field (did you mean "records"?)`}},
		{"idempotent: false\ntransactions: {}", []string{"test.yaml:2:15: driver.kafka.transactions: transactions need idempotent producers; remove idempotent: false"}},
	} {
		t.Run(tc.src, func(t *testing.T) {
			_, ps := decode(t, &tc.src)
			drivertest.CheckProblems(t, ps, tc.want)
		})
	}
}

// TestAbilitiesAndPipelineCheck: read_committed consumers have the
// read-committed ability; a pipeline's output must not be its input.
func TestAbilitiesAndPipelineCheck(t *testing.T) {
	o := kafka.DefaultOptions()
	if !slices.Contains(o.Abilities(), scenarios.AbilityProcessor) || slices.Contains(o.Abilities(), scenarios.AbilityReadCommitted) {
		t.Errorf("abilities %v", o.Abilities())
	}
	o.Isolation = "read_committed"
	if !slices.Contains(o.Abilities(), scenarios.AbilityReadCommitted) {
		t.Errorf("read_committed abilities %v", o.Abilities())
	}
	in, out := kafka.DefaultOptions(), kafka.DefaultOptions()
	in.Topic, out.Topic = "in", "out"
	if err := in.CheckPipelineOutput(out); err != nil {
		t.Errorf("in → out: %v", err)
	}
	out.Topic = "in"
	if err := in.CheckPipelineOutput(out); err == nil || !strings.Contains(err.Error(), `the output's topic is the input's ("in")`) {
		t.Errorf("in → in: %v", err)
	}
	out.Brokers = []string{"other:9092"} // another cluster: the same name is another topic
	if err := in.CheckPipelineOutput(out); err != nil {
		t.Errorf("in → in on another cluster: %v", err)
	}
	out.Topic, out.Brokers, out.Transactions = "out", nil, &kafka.TransactionOptions{}
	if err := in.CheckPipelineOutput(out); err == nil || !strings.Contains(err.Error(), "move the transactions block to the input") {
		t.Errorf("transactions on the output: %v", err)
	}
}
