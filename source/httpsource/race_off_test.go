//go:build !race

package httpsource

// raceEnabled reports a -race build, whose tests use smaller bodies.
const raceEnabled = false
