//go:build !race

package kafka_test

// raceEnabled: the race detector slows everything several times over.
const raceEnabled = false
