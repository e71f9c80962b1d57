//go:build !race

package server_test

// raceEnabled: the race detector is on, and its instrumentation doubles
// the stack a goroutine needs.
const raceEnabled = false
