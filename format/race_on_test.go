//go:build race

package format

// raceEnabled is true when the tests run with -race.
const raceEnabled = true
