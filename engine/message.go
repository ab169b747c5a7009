package engine

import (
	"math/rand/v2"
	"strconv"
	"sync"

	"github.com/spate-dev/spate/drivers"
	"github.com/spate-dev/spate/drivers/stamp"
	"github.com/spate-dev/spate/scenarios"
)

// fillerSize is the length of each producer's block of random filler bytes;
// message tails are windows onto it at rotating offsets, so compression is
// not flattered by zeros and no payload is generated or copied per message.
const fillerSize = 64 << 10

// composer builds one producer's messages: sizes, keys, stamps and filler.
// It is owned by the producer's goroutine.
type composer struct {
	runID    uint64
	producer uint32
	rng      *rand.Rand
	size     scenarios.SizeDist
	weights  []int // cumulative weights of size.Weighted
	keys     [][]byte
	strategy string
	nextKey  int
	filler   []byte
	fillAt   int
	sizes    []int // scratch for compose
}

func newComposer(sc *scenarios.Scenario, runID uint64, producer int) *composer {
	c := &composer{
		runID:    runID,
		producer: uint32(producer),
		rng:      rand.New(rand.NewPCG(uint64(sc.Seed), uint64(producer))),
		size:     sc.Message.Size,
		strategy: sc.Message.Keys.Strategy,
		nextKey:  producer, // producers start on different keys
	}
	sum := 0
	for _, w := range c.size.Weighted {
		sum += w.Weight
		c.weights = append(c.weights, sum)
	}
	c.keys = sharedKeys(sc.Message.Keys.Count)
	c.filler = make([]byte, fillerSize*2)
	for i := range c.filler {
		c.filler[i] = byte(c.rng.Uint32())
	}
	return c
}

func (c *composer) nextSize() int {
	switch {
	case c.size.Uniform != nil:
		lo, hi := int64(c.size.Uniform.Min), int64(c.size.Uniform.Max)
		return int(lo + c.rng.Int64N(hi-lo+1))
	case len(c.weights) > 0:
		x := c.rng.IntN(c.weights[len(c.weights)-1])
		for i, w := range c.weights {
			if x < w {
				return int(c.size.Weighted[i].Size)
			}
		}
	}
	return int(c.size.Fixed)
}

func (c *composer) key() []byte {
	switch c.strategy {
	case "round-robin":
		k := c.keys[c.nextKey%len(c.keys)]
		c.nextKey++
		return k
	case "random":
		return c.keys[c.rng.IntN(len(c.keys))]
	}
	return nil
}

// compose appends len(intended) messages with the given sequence numbers
// and intended times (Unix ns) to batch. The stamps of a batch share one
// allocation; the fillers are read-only windows onto the producer's block of
// random bytes, so no payload is copied.
func (c *composer) compose(batch []drivers.Message, firstSeq uint64, intended []int64) []drivers.Message {
	sizes := c.sizes[:0]
	for range intended {
		sizes = append(sizes, 0)
	}
	c.sizes = sizes
	for i := range sizes {
		sizes[i] = c.nextSize()
	}
	heads := make([]byte, stamp.Size*len(intended))
	for i, due := range intended {
		head := heads[i*stamp.Size : (i+1)*stamp.Size : (i+1)*stamp.Size]
		s := stamp.Stamp{RunID: c.runID, Producer: c.producer, Seq: firstSeq + uint64(i), Intended: due}
		s.Put(head)
		batch = append(batch, drivers.Message{Stamp: s, Key: c.key(), Head: head, Tail: c.tail(sizes[i] - stamp.Size)})
	}
	return batch
}

// tail returns n filler bytes: a read-only window onto the random block at a
// rotating offset. Messages larger than the block share one larger block
// (largeFiller), so no message's payload is allocated.
func (c *composer) tail(n int) []byte {
	if n <= 0 {
		return nil
	}
	if n > fillerSize {
		return largeFiller(n, c.filler[:fillerSize])
	}
	at := c.fillAt
	c.fillAt = (c.fillAt + n + 7) % fillerSize
	return c.filler[at : at+n : at+n]
}

// setSent stamps the actual send time into every message of batch.
func setSent(batch []drivers.Message, now int64) {
	for i := range batch {
		batch[i].Stamp.Sent = now
		stamp.SetSent(batch[i].Head, now)
	}
}

// Keys and large fillers are read-only and the same for every producer of
// a run, so they are made once per process and shared: their memory does
// not grow with the producers (scenarios bounds their size).
var (
	keysMu      sync.Mutex
	keyTables   = map[int][][]byte{}
	largeFill   []byte
	largeFillMu sync.Mutex
)

// sharedKeys returns the keys key-0 ... key-(count-1), made on first use.
func sharedKeys(count int) [][]byte {
	if count <= 0 {
		return nil
	}
	keysMu.Lock()
	defer keysMu.Unlock()
	if k, ok := keyTables[count]; ok {
		return k
	}
	keys := make([][]byte, count)
	for i := range keys {
		keys[i] = []byte("key-" + strconv.Itoa(i))
	}
	keyTables[count] = keys
	return keys
}

// largeFiller returns n read-only bytes of one process-wide block, grown
// (by repeating pattern) when n is larger than any asked for before.
func largeFiller(n int, pattern []byte) []byte {
	largeFillMu.Lock()
	defer largeFillMu.Unlock()
	if len(largeFill) < n {
		b := make([]byte, n)
		for i := 0; i < n; i += len(pattern) {
			copy(b[i:], pattern)
		}
		largeFill = b // windows onto the old block stay valid: it is never written
	}
	return largeFill[:n:n]
}
