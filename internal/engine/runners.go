package engine

import (
	"fmt"

	"github.com/sluicehq/sluice/job"
	"github.com/sluicehq/sluice/pipeline"
)

// remoteRunner builds job j's remote runner from its spec settings.
func (e *Engine) remoteRunner(j pipeline.Job) (job.Remote, error) {
	return nil, fmt.Errorf("runner %s is not wired yet", j.Runner)
}
