package emr

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/emr"

	"github.com/sluicehq/sluice/internal/awsconf"
)

// Defaults of Config.
const (
	DefaultName         = "sluice"
	DefaultIdleTimeout  = time.Hour
	MinIdleTimeout      = time.Minute
	MaxIdleTimeout      = 7 * 24 * time.Hour
	DefaultInstanceType = "m5.xlarge"
)

// Tag keys the runner sets on every cluster; Config.Tags may not use the
// "sluice:" prefix.
const (
	TagRunID = "sluice:run-id"
	TagJob   = "sluice:job"
	TagGroup = "sluice:group"
)

// maxTags is EMR's limit of tags per cluster.
const maxTags = 50

// Config is the `runner: emr` section of a job spec: where and how the
// transient cluster of each run is created. The spec parser fills it (its
// fields are named here by their snake_case spec names) and calls Check.
type Config struct {
	// Region is the AWS region (region); "" uses the SDK's default chain
	// (AWS_REGION, the profile).
	Region string
	// Endpoint overrides the EMR endpoint (endpoint), for tests and
	// private endpoints; "" uses AWS's.
	Endpoint string
	// Name is the cluster name prefix (name, default "sluice"); clusters
	// are named "<name>-<job>-<run id>".
	Name string
	// ReleaseLabel is the EMR release (release_label, required), like
	// "emr-7.2.0".
	ReleaseLabel string
	// Applications are installed on the cluster (applications, default
	// ["Spark"]); Spark must be one of them.
	Applications []string
	// ServiceRole is the EMR service role (service_role, required).
	ServiceRole string
	// InstanceProfile is the EC2 instance profile of the cluster's nodes
	// (instance_profile, required; EMR's JobFlowRole).
	InstanceProfile string
	// LogURI is where EMR writes the cluster's logs (log_uri, s3://...);
	// "" keeps no logs in S3.
	LogURI string
	// InstanceGroups (instance_groups) or InstanceFleets (instance_fleets)
	// are the cluster's nodes: at most one of the two. When both are empty
	// the cluster has one MASTER and two CORE m5.xlarge on-demand
	// instances.
	InstanceGroups []InstanceGroup
	InstanceFleets []InstanceFleet
	// SubnetIDs (subnets) place the cluster: the first one for
	// instance groups (Ec2SubnetId), all of them for instance fleets,
	// which let EMR choose (Ec2SubnetIds). Empty: the default VPC.
	SubnetIDs []string
	// BootstrapActions run on every node before Spark starts
	// (bootstrap_actions).
	BootstrapActions []BootstrapAction
	// IdleTimeout terminates a cluster left idle that long (idle_timeout,
	// default 1h, at least 60s, at most 7 days): a safety net, since the
	// cluster ends by itself after its step.
	IdleTimeout time.Duration
	// Tags are added to every cluster (tags); keys may not start with
	// "sluice:".
	Tags map[string]string
	// SecurityConfiguration names an EMR security configuration
	// (security_configuration); "" for none.
	SecurityConfiguration string
}

// InstanceGroup is one instance group (instance_groups[i]).
type InstanceGroup struct {
	// Role is MASTER, CORE or TASK (role).
	Role string
	// InstanceType is the EC2 instance type (type).
	InstanceType string
	// Count is the number of instances (count, at least 1; 1 or 3 for
	// MASTER).
	Count int32
	// Market is "" or ON_DEMAND, or SPOT (market).
	Market string
}

// InstanceFleet is one instance fleet (instance_fleets[i]).
type InstanceFleet struct {
	// Role is MASTER, CORE or TASK (role).
	Role string
	// InstanceTypes are the EC2 instance types EMR may pick from
	// (instance_types).
	InstanceTypes []string
	// TargetOnDemand and TargetSpot are the fleet's target capacities
	// (on_demand, spot); each type weighs 1 unit.
	TargetOnDemand int32
	TargetSpot     int32
}

// BootstrapAction is a script run on every node (bootstrap_actions[i]).
type BootstrapAction struct {
	Name string   // name
	Path string   // path, s3://... or file:/... on the node
	Args []string // args
}

// withDefaults returns c with its defaults filled in.
func (c Config) withDefaults() Config {
	if c.Name == "" {
		c.Name = DefaultName
	}
	if len(c.Applications) == 0 {
		c.Applications = []string{"Spark"}
	}
	if len(c.InstanceGroups) == 0 && len(c.InstanceFleets) == 0 {
		c.InstanceGroups = []InstanceGroup{
			{Role: "MASTER", InstanceType: DefaultInstanceType, Count: 1},
			{Role: "CORE", InstanceType: DefaultInstanceType, Count: 2},
		}
	}
	if c.IdleTimeout == 0 {
		c.IdleTimeout = DefaultIdleTimeout
	}
	return c
}

// Check reports every missing or invalid field, each named by its spec
// name (release_label, service_role, instance_groups[1].count, ...; list
// indexes start at 0), joined into one error; nil when c is usable.
func (c Config) Check() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if strings.TrimSpace(c.ReleaseLabel) == "" {
		bad(`release_label: required (the EMR release, like "emr-7.2.0")`)
	} else if !strings.HasPrefix(c.ReleaseLabel, "emr-") {
		bad(`release_label: %q is not an EMR release label (like "emr-7.2.0")`, c.ReleaseLabel)
	}
	if strings.TrimSpace(c.ServiceRole) == "" {
		bad("service_role: required (the IAM role EMR uses, like EMR_DefaultRole_V2)")
	}
	if strings.TrimSpace(c.InstanceProfile) == "" {
		bad("instance_profile: required (the EC2 instance profile of the cluster's nodes, like EMR_EC2_DefaultRole)")
	}
	if len(c.Name) > 64 {
		bad("name: %d characters; at most 64", len(c.Name))
	}
	if len(c.Applications) > 0 && !slices.ContainsFunc(c.Applications, func(a string) bool { return strings.EqualFold(a, "Spark") }) {
		bad("applications: must include Spark, which runs the job")
	}
	for i, a := range c.Applications {
		if strings.TrimSpace(a) == "" {
			bad("applications[%d]: empty", i)
		}
	}
	if c.LogURI != "" && !strings.HasPrefix(c.LogURI, "s3://") && !strings.HasPrefix(c.LogURI, "s3n://") {
		bad("log_uri: %q is not an s3:// URI", c.LogURI)
	}
	if len(c.InstanceGroups) > 0 && len(c.InstanceFleets) > 0 {
		bad("instance_groups, instance_fleets: set one of them, not both")
	}
	masters := 0
	for i, g := range c.InstanceGroups {
		p := fmt.Sprintf("instance_groups[%d]", i)
		switch g.Role {
		case "MASTER":
			masters++
			if g.Count != 1 && g.Count != 3 {
				bad("%s.count: a MASTER group has 1 instance (3 for high availability), not %d", p, g.Count)
			}
		case "CORE", "TASK":
			if g.Count < 1 {
				bad("%s.count: %d; at least 1", p, g.Count)
			}
		case "":
			bad("%s.role: required (MASTER, CORE or TASK)", p)
		default:
			bad("%s.role: %q is not MASTER, CORE or TASK", p, g.Role)
		}
		if strings.TrimSpace(g.InstanceType) == "" {
			bad("%s.type: required (like %s)", p, DefaultInstanceType)
		}
		if g.Market != "" && g.Market != "ON_DEMAND" && g.Market != "SPOT" {
			bad("%s.market: %q is not ON_DEMAND or SPOT", p, g.Market)
		}
	}
	if len(c.InstanceGroups) > 0 && masters != 1 {
		bad("instance_groups: %d MASTER groups; exactly 1", masters)
	}
	masters = 0
	for i, f := range c.InstanceFleets {
		p := fmt.Sprintf("instance_fleets[%d]", i)
		switch f.Role {
		case "MASTER":
			masters++
			if f.TargetOnDemand+f.TargetSpot != 1 {
				bad("%s: a MASTER fleet has a target capacity of 1 (on_demand + spot), not %d", p, f.TargetOnDemand+f.TargetSpot)
			}
		case "CORE", "TASK":
		case "":
			bad("%s.role: required (MASTER, CORE or TASK)", p)
		default:
			bad("%s.role: %q is not MASTER, CORE or TASK", p, f.Role)
		}
		if len(f.InstanceTypes) == 0 {
			bad("%s.types: required (one or more EC2 instance types)", p)
		}
		for j, it := range f.InstanceTypes {
			if strings.TrimSpace(it) == "" {
				bad("%s.types[%d]: empty", p, j)
			}
		}
		if f.TargetOnDemand < 0 {
			bad("%s.on_demand: %d; not negative", p, f.TargetOnDemand)
		}
		if f.TargetSpot < 0 {
			bad("%s.spot: %d; not negative", p, f.TargetSpot)
		}
		if f.Role != "MASTER" && f.TargetOnDemand+f.TargetSpot < 1 {
			bad("%s: on_demand + spot must be at least 1", p)
		}
	}
	if len(c.InstanceFleets) > 0 && masters != 1 {
		bad("instance_fleets: %d MASTER fleets; exactly 1", masters)
	}
	for i, s := range c.SubnetIDs {
		if !strings.HasPrefix(s, "subnet-") {
			bad("subnets[%d]: %q is not a subnet id (subnet-...)", i, s)
		}
	}
	for i, b := range c.BootstrapActions {
		p := fmt.Sprintf("bootstrap_actions[%d]", i)
		if strings.TrimSpace(b.Name) == "" {
			bad("%s.name: required", p)
		}
		if strings.TrimSpace(b.Path) == "" {
			bad("%s.path: required (the script's s3:// URI)", p)
		}
	}
	switch {
	case c.IdleTimeout < 0:
		bad("idle_timeout: %s is negative", c.IdleTimeout)
	case c.IdleTimeout != 0 && c.IdleTimeout < MinIdleTimeout:
		bad("idle_timeout: %s; at least %s", c.IdleTimeout, MinIdleTimeout)
	case c.IdleTimeout > MaxIdleTimeout:
		bad("idle_timeout: %s; at most %s", c.IdleTimeout, MaxIdleTimeout)
	}
	if len(c.Tags) > maxTags-3 {
		bad("tags: %d tags; at most %d (EMR allows %d and sluice sets 3)", len(c.Tags), maxTags-3, maxTags)
	}
	for _, k := range sortedKeys(c.Tags) {
		switch {
		case strings.HasPrefix(k, "sluice:"):
			bad("tags: key %q: the sluice: prefix is reserved for the tags sluice sets", k)
		case k == "" || len(k) > 128:
			bad("tags: key %q: 1 to 128 characters", k)
		case len(c.Tags[k]) > 256:
			bad("tags: value of %q: at most 256 characters", k)
		}
	}
	if len(errs) == 0 {
		return nil
	}
	return fmt.Errorf("emr runner settings: %w", errors.Join(errs...))
}

// instanceCount is how many instances the cluster has: the sum of the
// group counts, or for fleets the sum of the target capacities (an
// approximation: a fleet counts capacity units, and each instance type
// weighs 1 unit unless configured otherwise).
func (c Config) instanceCount() int {
	n := 0
	for _, g := range c.InstanceGroups {
		n += int(g.Count)
	}
	for _, f := range c.InstanceFleets {
		n += int(f.TargetOnDemand + f.TargetSpot)
	}
	return n
}

// NewClient returns an EMR client for c's Region and Endpoint, with
// credentials from the SDK's default chain.
func NewClient(ctx context.Context, c Config) (*emr.Client, error) {
	cfg, err := awsconf.Load(ctx, c.Region, "emr runner", "set region in the emr runner settings")
	if err != nil {
		return nil, err
	}
	return emr.NewFromConfig(cfg, func(o *emr.Options) { o.BaseEndpoint = awsconf.Endpoint(c.Endpoint) }), nil
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
