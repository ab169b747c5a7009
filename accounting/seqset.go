package accounting

import "math/bits"

// seqset is a set of sequence numbers stored as a paged bitset: one bit per
// number in 8 KiB pages of 65,536 numbers, allocated on first use. spate's
// sequence numbers are dense by construction (0, 1, 2, ... per producer), so
// a set costs about one bit per message sent (50 M messages: 6 MiB) and
// adding is a few instructions with no allocation except a new page.
// A seqset is not safe for concurrent use.
type seqset struct {
	pages [][]uint64
	n     int64
	// Words [dlo, dhi) (seq>>6) may hold bits added since the last
	// takeDirty (none when dlo >= dhi): what a live sync must ship.
	// Sequence numbers arrive nearly in order, so the range stays small.
	dlo, dhi uint64
}

const (
	pageShift = 16
	pageWords = 1 << pageShift / 64
)

// add inserts seq and reports whether it was new.
func (s *seqset) add(seq uint64) bool {
	pi := seq >> pageShift
	if pi >= uint64(len(s.pages)) {
		s.grow(int(pi) + 1)
	}
	pg := s.pages[pi]
	if pg == nil {
		pg = make([]uint64, pageWords)
		s.pages[pi] = pg
	}
	w, bit := (seq>>6)&(pageWords-1), uint64(1)<<(seq&63)
	if pg[w]&bit != 0 {
		return false
	}
	pg[w] |= bit
	s.n++
	if wi := seq >> 6; s.dlo >= s.dhi {
		s.dlo, s.dhi = wi, wi+1
	} else if wi < s.dlo {
		s.dlo = wi
	} else if wi >= s.dhi {
		s.dhi = wi + 1
	}
	return true
}

// grow makes room for n pages, doubling the page table's capacity only when
// it is exhausted. Entries between the old and new length are nil: the table
// never shrinks, so capacity beyond its length has never been written.
func (s *seqset) grow(n int) {
	if n <= cap(s.pages) {
		s.pages = s.pages[:n]
		return
	}
	pages := make([][]uint64, n, max(n, 2*cap(s.pages)))
	copy(pages, s.pages)
	s.pages = pages
}

// takeDirty returns copies of the words written since the last call, as
// parts of pages, and marks the set clean.
func (s *seqset) takeDirty() []Page {
	var out []Page
	for wi := s.dlo; wi < s.dhi; {
		pi, w := wi>>(pageShift-6), wi&(pageWords-1)
		end := min(s.dhi, (pi+1)<<(pageShift-6)) // the page's end, or the range's
		if pi < uint64(len(s.pages)) && s.pages[pi] != nil {
			out = append(out, Page{Index: uint32(pi), Offset: uint16(w), Bits: append([]uint64(nil), s.pages[pi][w:w+end-wi]...)})
		}
		wi = end
	}
	s.dlo, s.dhi = 0, 0
	return out
}

// all returns copies of every page.
func (s *seqset) all() []Page {
	var out []Page
	for pi, pg := range s.pages {
		if pg != nil {
			out = append(out, Page{Index: uint32(pi), Bits: append([]uint64(nil), pg...)})
		}
	}
	return out
}

// or adds the members of pg and returns the words it changed, as (word
// index within the page, newly set bits) pairs through fn, for callers
// that keep counts in step; fn may be nil. The set's count follows. pg
// must be well formed (State.check).
func (s *seqset) or(pg Page, fn func(w int, added uint64)) {
	pi := uint64(pg.Index)
	if pi >= uint64(len(s.pages)) {
		s.grow(int(pi) + 1)
	}
	dst := s.pages[pi]
	if dst == nil {
		dst = make([]uint64, pageWords)
		s.pages[pi] = dst
	}
	dst = dst[pg.Offset:]
	for w, word := range pg.Bits {
		added := word &^ dst[w]
		if added == 0 {
			continue
		}
		dst[w] |= added
		s.n += int64(bits.OnesCount64(added))
		if fn != nil {
			fn(int(pg.Offset)+w, added)
		}
	}
}

// clearFrom removes the members at or above seq and returns how many.
func (s *seqset) clearFrom(seq uint64) int64 {
	var n int64
	for pi := seq >> pageShift; pi < uint64(len(s.pages)); pi++ {
		pg := s.pages[pi]
		if pg == nil {
			continue
		}
		for w := range pg {
			lo := pi<<pageShift + uint64(w)*64 // the word's first member
			mask := ^uint64(0)
			if lo+64 <= seq {
				continue
			} else if lo < seq {
				mask <<= seq - lo
			}
			n += int64(bits.OnesCount64(pg[w] & mask))
			pg[w] &^= mask
		}
	}
	s.n -= n
	return n
}

// has reports whether seq is in the set.
func (s *seqset) has(seq uint64) bool {
	pi := seq >> pageShift
	if pi >= uint64(len(s.pages)) || s.pages[pi] == nil {
		return false
	}
	return s.pages[pi][(seq>>6)&(pageWords-1)]&(uint64(1)<<(seq&63)) != 0
}

// len is the number of members.
func (s *seqset) len() int64 { return s.n }

// bytes is the memory held by pages.
func (s *seqset) bytes() int64 {
	var b int64
	for _, p := range s.pages {
		b += int64(len(p)) * 8
	}
	return b + int64(cap(s.pages))*24
}

// word returns the 64-bit word holding seqs [i*64, i*64+64).
func (s *seqset) word(i uint64) uint64 {
	pi := i >> (pageShift - 6)
	if pi >= uint64(len(s.pages)) || s.pages[pi] == nil {
		return 0
	}
	return s.pages[pi][i&(pageWords-1)]
}

// countAndNot returns |a \ b| over seqs below limit, and calls each (if not
// nil) with members of the difference in ascending order until it returns false.
func countAndNot(a, b *seqset, limit uint64, each func(seq uint64) bool) int64 {
	var n int64
	words := (limit + 63) / 64
	for i := uint64(0); i < words; i++ {
		if (i & (pageWords - 1)) == 0 {
			if pi := i >> (pageShift - 6); pi >= uint64(len(a.pages)) {
				break
			} else if a.pages[pi] == nil {
				i += pageWords - 1
				continue
			}
		}
		w := a.word(i) &^ b.word(i)
		if i == words-1 && limit%64 != 0 {
			w &= (uint64(1) << (limit % 64)) - 1
		}
		n += int64(bits.OnesCount64(w))
		for each != nil && w != 0 {
			t := bits.TrailingZeros64(w)
			if !each(i*64 + uint64(t)) {
				each = nil
			}
			w &= w - 1
		}
	}
	return n
}

// countWords returns the number of bits set in word(i) over the words of
// seqs below limit, for any combination of sets that is empty wherever
// base is (base's missing pages are skipped).
func countWords(base *seqset, limit uint64, word func(i uint64) uint64) int64 {
	var n int64
	words := (limit + 63) / 64
	for i := uint64(0); i < words; i++ {
		if (i & (pageWords - 1)) == 0 {
			if pi := i >> (pageShift - 6); pi >= uint64(len(base.pages)) {
				break
			} else if base.pages[pi] == nil {
				i += pageWords - 1
				continue
			}
		}
		w := word(i)
		if i == words-1 && limit%64 != 0 {
			w &= (uint64(1) << (limit % 64)) - 1
		}
		n += int64(bits.OnesCount64(w))
	}
	return n
}

// pubTimes holds a publish latency per sequence number, in paged arrays of
// 65,536 entries (256 KiB) made on first use: microseconds plus one, so 0
// means none recorded. It is not safe for concurrent use.
type pubTimes struct {
	pages [][]uint32
}

// set records seq's publish latency ns (clamped to 0..about 71 minutes).
func (p *pubTimes) set(seq uint64, ns int64) {
	pi := seq >> pageShift
	if n := int(pi) + 1; n > len(p.pages) { // as seqset.grow
		if n <= cap(p.pages) {
			p.pages = p.pages[:n]
		} else {
			pages := make([][]uint32, n, max(n, 2*cap(p.pages)))
			copy(pages, p.pages)
			p.pages = pages
		}
	}
	if p.pages[pi] == nil {
		p.pages[pi] = make([]uint32, 1<<pageShift)
	}
	us := min(max(ns/1e3, 0), 1<<32-2)
	p.pages[pi][seq&(1<<pageShift-1)] = uint32(us) + 1
}

// get returns seq's publish latency in nanoseconds, if recorded.
func (p *pubTimes) get(seq uint64) (int64, bool) {
	pi := seq >> pageShift
	if pi >= uint64(len(p.pages)) || p.pages[pi] == nil {
		return 0, false
	}
	v := p.pages[pi][seq&(1<<pageShift-1)]
	if v == 0 {
		return 0, false
	}
	return int64(v-1) * 1e3, true
}

// bytes is the memory held by the pages.
func (p *pubTimes) bytes() int64 {
	var b int64
	for _, pg := range p.pages {
		b += int64(len(pg)) * 4
	}
	return b + int64(cap(p.pages))*24
}
