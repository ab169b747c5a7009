package accounting

import (
	"math/rand/v2"
	"slices"
	"testing"
)

// refAndNot is countAndNot's reference: members of a not in b, ascending.
func refAndNot(a, b map[uint64]bool) []uint64 {
	var out []uint64
	for s := range a {
		if !b[s] {
			out = append(out, s)
		}
	}
	slices.Sort(out)
	return out
}

// below returns the members of sorted below limit.
func below(sorted []uint64, limit uint64) []uint64 {
	i, _ := slices.BinarySearch(sorted, limit)
	return sorted[:i]
}

func TestSeqsetAgainstMap(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	const pages = 6
	span := uint64(pages) << pageShift
	for round := range 20 {
		var a, b seqset
		ra, rb := map[uint64]bool{}, map[uint64]bool{}
		// Dense runs, sparse picks, and whole pages left empty (page 2 in
		// a, page 4 in b), so nil pages are skipped on both sides.
		n := 1 + rng.IntN(40000)
		for range n {
			var s uint64
			if rng.IntN(2) == 0 {
				s = rng.Uint64N(span)
			} else {
				s = uint64(round)*64 + rng.Uint64N(3000) // dense near the start
			}
			if s>>pageShift != 2 {
				if got, want := a.add(s), !ra[s]; got != want {
					t.Fatalf("a.add(%d) = %v, want %v", s, got, want)
				}
				ra[s] = true
			}
			if rng.IntN(3) == 0 && s>>pageShift != 4 {
				if got, want := b.add(s), !rb[s]; got != want {
					t.Fatalf("b.add(%d) = %v, want %v", s, got, want)
				}
				rb[s] = true
			}
		}
		if a.len() != int64(len(ra)) || b.len() != int64(len(rb)) {
			t.Fatalf("len %d %d, want %d %d", a.len(), b.len(), len(ra), len(rb))
		}
		for range 2000 {
			s := rng.Uint64N(span + 1000)
			if a.has(s) != ra[s] || b.has(s) != rb[s] {
				t.Fatalf("has(%d): a %v b %v, want %v %v", s, a.has(s), b.has(s), ra[s], rb[s])
			}
		}
		if a.has(1<<40) || b.has(^uint64(0)) {
			t.Fatal("has beyond every page")
		}
		limits := []uint64{0, 1, 63, 64, 65, 127, 1<<pageShift - 1, 1 << pageShift, 1<<pageShift + 1,
			3<<pageShift + 17, span - 1, span, span + 12345, 1 << 40}
		for range 10 {
			limits = append(limits, rng.Uint64N(span))
		}
		aNotB, bNotA := refAndNot(ra, rb), refAndNot(rb, ra)
		for _, limit := range limits {
			want := below(aNotB, limit)
			var got []uint64
			n := countAndNot(&a, &b, limit, func(s uint64) bool { got = append(got, s); return true })
			if n != int64(len(want)) || !slices.Equal(got, want) {
				t.Fatalf("countAndNot(a, b, %d) = %d with %d members, want %d", limit, n, len(got), len(want))
			}
			if n := countAndNot(&a, &b, limit, nil); n != int64(len(want)) {
				t.Fatalf("countAndNot(a, b, %d, nil) = %d, want %d", limit, n, len(want))
			}
			wantBA := below(bNotA, limit)
			if n := countAndNot(&b, &a, limit, nil); n != int64(len(wantBA)) {
				t.Fatalf("countAndNot(b, a, %d) = %d, want %d", limit, n, len(wantBA))
			}
			// Stop early: each sees exactly the first k, the count is whole.
			if len(want) > 0 {
				k := 1 + rng.IntN(len(want))
				got = got[:0]
				n := countAndNot(&a, &b, limit, func(s uint64) bool { got = append(got, s); return len(got) < k })
				if n != int64(len(want)) || !slices.Equal(got, want[:k]) {
					t.Fatalf("countAndNot(a, b, %d) stopping after %d: %d, saw %v, want %v", limit, k, n, got, want[:k])
				}
			}
		}
	}
}

func TestSeqsetEmpty(t *testing.T) {
	var a, b seqset
	if countAndNot(&a, &b, 1<<30, func(uint64) bool { t.Fatal("called"); return true }) != 0 {
		t.Error("empty sets differ")
	}
	b.add(5)
	if n := countAndNot(&a, &b, 100, nil); n != 0 {
		t.Errorf("empty minus {5} = %d", n)
	}
	if n := countAndNot(&b, &a, 100, nil); n != 1 {
		t.Errorf("{5} minus empty = %d", n)
	}
	if n := countAndNot(&b, &a, 5, nil); n != 0 {
		t.Errorf("{5} minus empty below 5 = %d", n)
	}
	if a.bytes() != 0 {
		t.Errorf("empty set holds %d bytes", a.bytes())
	}
}

// TestSeqsetGrowsLinearly: the page table grows by doubling, not at every
// new page. (It used to double its capacity on each new page: 24 pages,
// 1.5 M sequence numbers, cost 200 MB, and 50 M ran out of memory.)
func TestSeqsetGrowsLinearly(t *testing.T) {
	var s seqset
	const pages = 800 // 52 M sequence numbers
	for p := uint64(0); p < pages; p++ {
		s.add(p<<pageShift + p)
		if p == 19 && cap(s.pages) > 40 {
			t.Fatalf("page table capacity %d for 20 pages", cap(s.pages))
		}
	}
	if c := cap(s.pages); c > 2*pages {
		t.Errorf("page table capacity %d for %d pages", c, pages)
	}
	if max := int64(pages*pageWords*8 + 2*pages*24); s.bytes() > max {
		t.Errorf("%d pages hold %d bytes, want at most %d", pages, s.bytes(), max)
	}
	for p := uint64(0); p < pages; p++ {
		if !s.has(p<<pageShift+p) || s.has(p<<pageShift+p+1) {
			t.Fatalf("page %d lost its member", p)
		}
	}
}
