//go:build race

package stream

// raceEnabled: the race detector roughly doubles goroutine stacks, so
// memory limits are not checked under it.
const raceEnabled = true
