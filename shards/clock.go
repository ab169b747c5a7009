package shards

import (
	"context"
	"time"
)

// clock reads this process's wall clock, shifted by skew: zero but in
// tests, which use it to play a host whose clock is off.
type clock struct{ skew time.Duration }

func (c clock) now() int64 { return time.Now().UnixNano() + int64(c.skew) }

// offset is an estimate of how far the coordinator's clock is ahead of
// this shard's: coordinator time = shard time + ns, to within uncertainty.
type offset struct {
	ns          int64
	uncertainty int64
}

// exchange is one NTP-style round: the shard's send time t1, the
// coordinator's receive and reply times t2 and t3, and the shard's
// receive time t4.
type exchange struct{ t1, t2, t3, t4 int64 }

// estimate returns the offset ((t2−t1)+(t3−t4))/2 of the exchange with the
// shortest round trip ((t4−t1)−(t3−t2)), whose uncertainty is half that
// round trip: the true offset lies within it whatever the asymmetry of
// the two directions.
func estimate(xs []exchange) (offset, bool) {
	best, ok := offset{}, false
	var bestDelay int64
	for _, x := range xs {
		delay := (x.t4 - x.t1) - (x.t3 - x.t2)
		if delay < 0 {
			continue // a clock stepped during the exchange
		}
		if !ok || delay < bestDelay {
			best = offset{ns: ((x.t2 - x.t1) + (x.t3 - x.t4)) / 2, uncertainty: (delay + 1) / 2}
			bestDelay, ok = delay, true
		}
	}
	return best, ok
}

// clockExchanges is how many rounds a shard makes to measure its offset.
const clockExchanges = 16

// measureOffset runs clockExchanges rounds through ask, which sends t1 and
// returns the coordinator's t2 and t3, and returns the best estimate.
func measureOffset(ctx context.Context, c clock, ask func(ctx context.Context, t1 int64) (t2, t3 int64, err error)) (offset, error) {
	var xs []exchange
	for range clockExchanges {
		t1 := c.now()
		t2, t3, err := ask(ctx, t1)
		if err != nil {
			return offset{}, err
		}
		xs = append(xs, exchange{t1, t2, t3, c.now()})
	}
	o, ok := estimate(xs)
	if !ok {
		return offset{}, errClockStepped
	}
	return o, nil
}
