package local

import "time"

// SetFenceWait sets how long and how often CheckFence waits for a claim,
// until the test ends.
func SetFenceWait(wait, poll time.Duration) (restore func()) {
	w, p := fenceWait, fencePoll
	fenceWait, fencePoll = wait, poll
	return func() { fenceWait, fencePoll = w, p }
}
