package engine

import (
	"context"
	"testing"
	"testing/synctest"

	"github.com/spate-dev/spate/drivers"
)

// idleConsumer consumes nothing until its context ends.
type idleConsumer struct{}

func (idleConsumer) Consume(ctx context.Context, _ drivers.Handler) error {
	<-ctx.Done()
	return nil
}

// TestStopWaitsForRestart: a crash that comes while the previous crash's
// restart is still opening its consumer (slow on a loaded host) waits
// for it and stops the new consumer, rather than failing with "already
// stopped" (as a loaded CI machine once saw in TestPipelineExactlyOnce).
func TestStopWaitsForRestart(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		opening, release := make(chan struct{}), make(chan struct{})
		open := func(context.Context, int) (drivers.Consumer, error) {
			opening <- struct{}{}
			<-release
			return idleConsumer{}, nil
		}
		s := newProcessorSet(ctx, []drivers.Consumer{idleConsumer{}}, open, func(err error) { t.Errorf("the set failed: %v", err) })
		if err := s.Stop(ctx, 0, true); err != nil {
			t.Fatal(err)
		}
		started, stopped := make(chan error, 1), make(chan error, 1)
		go func() { started <- s.Start(ctx, 0) }()
		<-opening
		go func() { stopped <- s.Stop(ctx, 0, true) }()
		synctest.Wait()
		select {
		case err := <-stopped:
			t.Fatalf("the second stop returned (%v) while the restart was opening its consumer; want it to wait", err)
		default:
		}
		close(release)
		if err := <-started; err != nil {
			t.Fatalf("restart: %v", err)
		}
		if err := <-stopped; err != nil {
			t.Fatalf("second stop: %v", err)
		}
		if sl := s.slots[0]; sl.current != nil {
			t.Error("the restarted consumer is still running after the second stop")
		}
		cancel()
		s.wg.Wait()
	})
}
