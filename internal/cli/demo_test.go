package cli

import (
	"bytes"
	"fmt"
	"strings"
	"testing"

	"github.com/sluicehq/sluice/internal/datadir"
	"github.com/sluicehq/sluice/pipeline"
)

// The demo's header says what it runs on: embedded defaults only when the
// environment overrides nothing, else each URL with where it came from, and
// never a password.
func TestDemoHeaderNamesTheURLsTheEnvironmentSets(t *testing.T) {
	for _, tc := range []struct {
		name      string
		env       map[string]string
		want      []string
		never     []string
		overrides string
	}{
		{
			name: "defaults",
			want: []string{"on embedded defaults\n", "  store       file:///dd/lake (embedded default)\n",
				"  queue       embedded (embedded default)\n", "  warehouse   sqlite:///dd/warehouse.db (embedded default)\n",
				"  state       sqlite:///dd/state.db (embedded default)\n"},
		},
		{
			name: "all from the environment",
			env: map[string]string{
				"SLUICE_STORE":     "s3://lake?endpoint=http://127.0.0.1:9000&region=us-east-1",
				"SLUICE_QUEUE":     "amqp://guest:s3cret@127.0.0.1:5672/",
				"SLUICE_WAREHOUSE": "postgres://u:s3cret@127.0.0.1:5432/test?schema=wh",
				"SLUICE_STATE":     "postgres://u:s3cret@127.0.0.1:5432/test?schema=st",
			},
			want: []string{"on the URLs the environment sets\n",
				"  store       s3://lake?endpoint=http://127.0.0.1:9000&region=us-east-1 (from SLUICE_STORE)\n",
				"  queue       amqp://guest:xxxxx@127.0.0.1:5672/ (from SLUICE_QUEUE)\n",
				"  warehouse   postgres://u:xxxxx@127.0.0.1:5432/test?schema=wh (from SLUICE_WAREHOUSE)\n",
				"  state       postgres://u:xxxxx@127.0.0.1:5432/test?schema=st (from SLUICE_STATE)\n"},
			never:     []string{"s3cret", "embedded"},
			overrides: "SLUICE_STORE,SLUICE_QUEUE,SLUICE_WAREHOUSE,SLUICE_STATE",
		},
		{
			name: "some from the environment",
			env:  map[string]string{"SLUICE_QUEUE": "nats://127.0.0.1:4222"},
			want: []string{"on the URLs the environment sets and embedded defaults\n",
				"  queue       nats://127.0.0.1:4222 (from SLUICE_QUEUE)\n",
				"  warehouse   sqlite:///dd/warehouse.db (embedded default)\n"},
			overrides: "SLUICE_QUEUE",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			getenv := func(k string) string { return tc.env[k] }
			spec, err := pipeline.Parse("demo.yaml", []byte(fmt.Sprintf(demoSpec, "http://127.0.0.1:1")), getenv)
			if err != nil {
				t.Fatal(err)
			}
			dir, err := datadir.Resolve("/dd", getenv)
			if err != nil {
				t.Fatal(err)
			}
			var out bytes.Buffer
			a := &app{stdout: &out, getenv: getenv}
			got := strings.Join(a.demoHeader(spec, dir), ",")
			if got != tc.overrides {
				t.Errorf("overrides = %q, want %q", got, tc.overrides)
			}
			for _, w := range tc.want {
				if !strings.Contains(out.String(), w) {
					t.Errorf("header lacks %q:\n%s", w, out.String())
				}
			}
			for _, n := range tc.never {
				if strings.Contains(out.String(), n) {
					t.Errorf("header shows %q:\n%s", n, out.String())
				}
			}
		})
	}
}
