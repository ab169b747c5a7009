package memory

// SetReleaseRing lets tests release emptied rings at a small size; it
// returns a function that restores the default.
func SetReleaseRing(n int) (restore func()) {
	old := releaseRing
	releaseRing = n
	return func() { releaseRing = old }
}
