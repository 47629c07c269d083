package emrserverless

import (
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"sort"
	"strings"
)

// Config is where and how job runs start: the application, the role they
// run as, and what every run gets. Its fields are the runner's spec
// settings, named in Check's errors by their snake_case spec names.
type Config struct {
	// Region is the AWS region (region; "": the SDK's default chain, such
	// as AWS_REGION).
	Region string
	// Endpoint overrides the EMR Serverless endpoint (endpoint; "": AWS's).
	Endpoint string
	// ApplicationID is the existing EMR Serverless application that runs
	// the job runs (application_id; required), like "00fabcdef1234567".
	ApplicationID string
	// ExecutionRole is the ARN of the IAM role the job runs assume
	// (execution_role; required): arn:aws:iam::<account>:role/<name>.
	ExecutionRole string
	// Name prefixes each job run's name, "<name>-<job>-<run id>" (name;
	// default DefaultName).
	Name string
	// LogURI is where the job runs' logs go
	// (monitoringConfiguration.s3MonitoringConfiguration.logUri; log_uri;
	// optional), an s3:// URI.
	LogURI string
	// SparkSubmitParameters is appended to every run's
	// sparkSubmitParameters (spark_submit_parameters; optional), like
	// "--conf spark.executor.cores=4".
	SparkSubmitParameters string
	// Tags are added to every job run (tags); keys starting with "sluice:"
	// are reserved for the tags the runner sets itself.
	Tags map[string]string
}

// DefaultName is the job run name prefix when Config.Name is "".
const DefaultName = "sluice"

var (
	applicationID = regexp.MustCompile(`^[0-9a-z]{1,64}$`)
	roleARN       = regexp.MustCompile(`^arn:aws[a-z-]*:iam::\d{12}:role/[\w+=,.@/-]+$`)
	tagChars      = regexp.MustCompile(`^[A-Za-z0-9 /_.:=+@-]*$`)
)

// Check reports every missing or invalid setting, each named by its spec
// name (application_id, execution_role, name, log_uri, endpoint, tags,
// spark_submit_parameters), joined into one error; nil when c is usable.
func (c Config) Check() error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("emr-serverless runner: %s: %s", field, fmt.Sprintf(format, args...)))
	}
	switch {
	case c.ApplicationID == "":
		bad("application_id", "required: the id of an existing EMR Serverless application (like 00fabcdef1234567; `aws emr-serverless list-applications`)")
	case !applicationID.MatchString(c.ApplicationID):
		bad("application_id", "%q is not an EMR Serverless application id (1 to 64 lowercase letters and digits, like 00fabcdef1234567)", c.ApplicationID)
	}
	switch {
	case c.ExecutionRole == "":
		bad("execution_role", "required: the ARN of the IAM role the job runs assume (arn:aws:iam::123456789012:role/NAME)")
	case !roleARN.MatchString(c.ExecutionRole):
		bad("execution_role", "%q is not an IAM role ARN (arn:aws:iam::<12-digit account>:role/NAME)", c.ExecutionRole)
	}
	if len(c.Name) > maxPrefix || strings.ContainsAny(c.Name, " \t\r\n") {
		bad("name", "%q: a job run name prefix is at most %d characters, without spaces", c.Name, maxPrefix)
	}
	if c.LogURI != "" {
		if u, err := url.Parse(c.LogURI); err != nil || u.Scheme != "s3" || u.Host == "" {
			bad("log_uri", "%q is not an s3://bucket/prefix URI", c.LogURI)
		}
	}
	if c.Endpoint != "" {
		if u, err := url.Parse(c.Endpoint); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			bad("endpoint", "%q is not an http(s):// URL", c.Endpoint)
		}
	}
	if len(c.SparkSubmitParameters) > maxSubmitParams/2 {
		bad("spark_submit_parameters", "%d characters; at most %d", len(c.SparkSubmitParameters), maxSubmitParams/2)
	}
	keys := make([]string, 0, len(c.Tags))
	for k := range c.Tags {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		v := c.Tags[k]
		switch {
		case strings.HasPrefix(k, tagPrefix):
			bad("tags", "key %q: keys starting with %q are set by sluice", k, tagPrefix)
		case k == "" || len(k) > 128 || !tagChars.MatchString(k):
			bad("tags", "key %q: keys are 1 to 128 of A-Z a-z 0-9 space and /_.:=+@-", k)
		case len(v) > 256 || !tagChars.MatchString(v):
			bad("tags", "value of %q: values are up to 256 of A-Z a-z 0-9 space and /_.:=+@-", k)
		}
	}
	if len(c.Tags) > maxTags-3 {
		bad("tags", "%d tags; at most %d (sluice adds 3 of the service's 200)", len(c.Tags), maxTags-3)
	}
	return errors.Join(errs...)
}

// Limits of the service and of what the runner adds.
const (
	maxPrefix       = 64
	maxName         = 256
	maxSubmitParams = 102400
	maxTags         = 200
	maxTagValue     = 256
	tagPrefix       = "sluice:"
)
