package job

import (
	"context"
	"time"

	"github.com/sluicehq/sluice/fault"
)

// SortInputsForTest exposes sortInputs to the external tests.
var SortInputsForTest = sortInputs

// SetTick, SetOnDead and SetRetry change a Manager's options after
// NewManager, for the external tests.
func (m *Manager) SetTick(d time.Duration) { m.tick = d }

func (m *Manager) SetOnDead(f func(context.Context, Run, string)) { m.onDead = f }

func (m *Manager) SetRetry(r fault.Retry) { m.retry = r }

// SetSleep replaces a Manager's Sleep, for the external tests.
func (m *Manager) SetSleep(f func(context.Context, time.Duration) error) { m.sleep = f }
