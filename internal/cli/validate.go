package cli

import (
	"context"
	"fmt"

	"github.com/sluicehq/sluice/pipeline"
)

func init() {
	register(command{name: "validate", args: "-f PIPELINE.yaml",
		summary: "check a pipeline spec and report every error with file:line", run: runValidate})
}

func runValidate(ctx context.Context, a *app, args []string) error {
	fs := a.flags("validate")
	file := fs.String("f", "", "pipeline spec file (required)")
	pos, err := a.parse(fs, args)
	if err != nil {
		return err
	}
	if *file == "" && len(pos) == 1 {
		*file = pos[0]
	}
	if *file == "" {
		return usagef("-f PIPELINE.yaml is required")
	}
	spec, err := pipeline.LoadFile(*file, a.getenv)
	if err != nil {
		if list, ok := err.(pipeline.ErrorList); ok {
			for _, e := range list {
				fmt.Fprintln(a.stdout, e)
			}
			return exitError{1, fmt.Errorf("%s: %d error(s)", *file, len(list))}
		}
		return err
	}
	for _, w := range spec.Warnings {
		fmt.Fprintln(a.stdout, "warning:", w)
	}
	warned := ""
	if n := len(spec.Warnings); n > 0 {
		warned = fmt.Sprintf(", %d warning(s)", n)
	}
	fmt.Fprintf(a.stdout, "%s: ok — pipeline %q: %d source(s), %d load(s), %d job(s)%s\n", *file, spec.Name, len(spec.Sources), len(spec.Loads), len(spec.Jobs), warned)
	return nil
}
