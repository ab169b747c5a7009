package engine

import (
	"context"
	"time"
)

// waitTrafficEnd waits, once the producers have sent their last messages,
// for the end of the traffic profile, and returns when the traffic ended:
// the profile's end when the producers kept up (10/s for 1 s sends its
// last message at 900 ms, yet the traffic lasts 1 s, not 900 ms, and not
// the 1.001 s a timer wakes at), when they finished if they fell behind,
// or when ctx ended (an interrupt, a failure). Every rate divides by it.
func (r *run) waitTrafficEnd(ctx context.Context) time.Duration {
	end := r.tl.Duration()
	d := end - r.elapsed()
	if d <= 0 || ctx.Err() != nil {
		return r.elapsed()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return r.elapsed()
	case <-t.C:
		return end
	}
}
