package emr_test

import (
	"strings"
	"testing"
	"time"

	"github.com/sluicehq/sluice/job/emr"
)

func TestCheckNamesEveryMissingOrInvalidField(t *testing.T) {
	valid := fullConfig
	for _, tc := range []struct {
		name string
		edit func(c *emr.Config)
		want []string // one entry per problem, by spec name
	}{
		{"empty", func(c *emr.Config) { *c = emr.Config{} }, []string{"release_label:", "service_role:", "instance_profile:"}},
		{"release label", func(c *emr.Config) { c.ReleaseLabel = "7.2.0" }, []string{"release_label:"}},
		{"applications without spark", func(c *emr.Config) { c.Applications = []string{"Hive", ""} },
			[]string{"applications: must include Spark", "applications[1]:"}},
		{"log uri", func(c *emr.Config) { c.LogURI = "/var/log" }, []string{"log_uri:"}},
		{"groups and fleets", func(c *emr.Config) {
			c.InstanceFleets = []emr.InstanceFleet{{Role: "MASTER", InstanceTypes: []string{"m5.xlarge"}, TargetOnDemand: 1}}
		}, []string{"instance_groups, instance_fleets:"}},
		{"bad group", func(c *emr.Config) {
			c.InstanceGroups = []emr.InstanceGroup{{Role: "MASTER", InstanceType: "m5.xlarge", Count: 2}, {Role: "CORE", Count: 0, Market: "CHEAP"}, {Role: "WORKER", InstanceType: "m5.xlarge", Count: 1}}
		}, []string{"instance_groups[0].count:", "instance_groups[1].count:", "instance_groups[1].type:", "instance_groups[1].market:", "instance_groups[2].role:"}},
		{"no master group", func(c *emr.Config) {
			c.InstanceGroups = []emr.InstanceGroup{{Role: "CORE", InstanceType: "m5.xlarge", Count: 2}}
		}, []string{"instance_groups: 0 MASTER groups"}},
		{"bad fleets", func(c *emr.Config) {
			c.InstanceGroups = nil
			c.InstanceFleets = []emr.InstanceFleet{{Role: "MASTER", TargetOnDemand: 2}, {Role: "CORE", InstanceTypes: []string{""}, TargetSpot: -1}}
		}, []string{"instance_fleets[0]: a MASTER fleet", "instance_fleets[0].types:", "instance_fleets[1].types[0]:",
			"instance_fleets[1].spot:", "instance_fleets[1]: on_demand + spot"}},
		{"subnet", func(c *emr.Config) { c.SubnetIDs = []string{"vpc-1"} }, []string{"subnets[0]:"}},
		{"bootstrap", func(c *emr.Config) { c.BootstrapActions = []emr.BootstrapAction{{}} },
			[]string{"bootstrap_actions[0].name:", "bootstrap_actions[0].path:"}},
		{"idle timeout too short", func(c *emr.Config) { c.IdleTimeout = 30 * time.Second }, []string{"idle_timeout:"}},
		{"idle timeout too long", func(c *emr.Config) { c.IdleTimeout = 8 * 24 * time.Hour }, []string{"idle_timeout:"}},
		{"reserved tag", func(c *emr.Config) { c.Tags = map[string]string{"sluice:run-id": "x", "": "y"} }, []string{`tags: key ""`, `tags: key "sluice:run-id"`}},
		{"long name", func(c *emr.Config) { c.Name = strings.Repeat("n", 65) }, []string{"name:"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := valid()
			tc.edit(&c)
			err := c.Check()
			if err == nil {
				t.Fatalf("Check() = nil, want %q", tc.want)
			}
			lines := strings.Split(strings.TrimPrefix(err.Error(), "emr runner settings: "), "\n")
			if len(lines) != len(tc.want) {
				t.Fatalf("Check() reported %d problems, want %d:\n%v", len(lines), len(tc.want), err)
			}
			for i, w := range tc.want {
				if !strings.HasPrefix(lines[i], w) {
					t.Errorf("problem %d = %q, want it to start with %q", i, lines[i], w)
				}
			}
		})
	}
	for name, c := range map[string]emr.Config{"full": fullConfig(), "minimal": minimalConfig()} {
		if err := c.Check(); err != nil {
			t.Errorf("Check() of the %s config = %v, want nil", name, err)
		}
	}
}
