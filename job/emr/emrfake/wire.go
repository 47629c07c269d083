package emrfake

import (
	"strconv"
	"time"
)

// The request shapes the fake decodes, with the JSON member names of the
// EMR API (awsJson1_1, as aws-sdk-go-v2/service/emr serialises them). Only
// the members the fake models are here; every request's whole body is
// kept in Request.Body.

// RunJobFlowInput is the body of RunJobFlow.
type RunJobFlowInput struct {
	Name                  string                  `json:"Name"`
	LogUri                string                  `json:"LogUri,omitempty"`
	ReleaseLabel          string                  `json:"ReleaseLabel,omitempty"`
	Applications          []Application           `json:"Applications,omitempty"`
	Instances             *JobFlowInstancesConfig `json:"Instances,omitempty"`
	Steps                 []StepConfig            `json:"Steps,omitempty"`
	BootstrapActions      []BootstrapActionConfig `json:"BootstrapActions,omitempty"`
	ServiceRole           string                  `json:"ServiceRole,omitempty"`
	JobFlowRole           string                  `json:"JobFlowRole,omitempty"`
	AutoTerminationPolicy *AutoTerminationPolicy  `json:"AutoTerminationPolicy,omitempty"`
	Tags                  []Tag                   `json:"Tags,omitempty"`
	VisibleToAllUsers     *bool                   `json:"VisibleToAllUsers,omitempty"`
	SecurityConfiguration string                  `json:"SecurityConfiguration,omitempty"`
}

// Application is one application to install.
type Application struct {
	Name string `json:"Name"`
}

// JobFlowInstancesConfig is RunJobFlow's Instances.
type JobFlowInstancesConfig struct {
	InstanceGroups              []InstanceGroupConfig `json:"InstanceGroups,omitempty"`
	InstanceFleets              []InstanceFleetConfig `json:"InstanceFleets,omitempty"`
	KeepJobFlowAliveWhenNoSteps *bool                 `json:"KeepJobFlowAliveWhenNoSteps,omitempty"`
	TerminationProtected        *bool                 `json:"TerminationProtected,omitempty"`
	Ec2SubnetId                 string                `json:"Ec2SubnetId,omitempty"`
	Ec2SubnetIds                []string              `json:"Ec2SubnetIds,omitempty"`
}

// InstanceGroupConfig is one instance group.
type InstanceGroupConfig struct {
	Name          string `json:"Name,omitempty"`
	InstanceRole  string `json:"InstanceRole"`
	InstanceType  string `json:"InstanceType"`
	InstanceCount int32  `json:"InstanceCount"`
	Market        string `json:"Market,omitempty"`
}

// InstanceFleetConfig is one instance fleet.
type InstanceFleetConfig struct {
	Name                   string               `json:"Name,omitempty"`
	InstanceFleetType      string               `json:"InstanceFleetType"`
	InstanceTypeConfigs    []InstanceTypeConfig `json:"InstanceTypeConfigs,omitempty"`
	TargetOnDemandCapacity *int32               `json:"TargetOnDemandCapacity,omitempty"`
	TargetSpotCapacity     *int32               `json:"TargetSpotCapacity,omitempty"`
}

// InstanceTypeConfig is one instance type of a fleet.
type InstanceTypeConfig struct {
	InstanceType string `json:"InstanceType"`
}

// StepConfig is one step to run.
type StepConfig struct {
	Name            string              `json:"Name"`
	ActionOnFailure string              `json:"ActionOnFailure,omitempty"`
	HadoopJarStep   HadoopJarStepConfig `json:"HadoopJarStep"`
}

// HadoopJarStepConfig is a step's JAR and arguments.
type HadoopJarStepConfig struct {
	Jar       string   `json:"Jar"`
	Args      []string `json:"Args,omitempty"`
	MainClass string   `json:"MainClass,omitempty"`
}

// BootstrapActionConfig is one bootstrap action.
type BootstrapActionConfig struct {
	Name                  string                      `json:"Name"`
	ScriptBootstrapAction ScriptBootstrapActionConfig `json:"ScriptBootstrapAction"`
}

// ScriptBootstrapActionConfig is a bootstrap action's script.
type ScriptBootstrapActionConfig struct {
	Path string   `json:"Path"`
	Args []string `json:"Args,omitempty"`
}

// AutoTerminationPolicy ends an idle cluster after IdleTimeout seconds.
type AutoTerminationPolicy struct {
	IdleTimeout int64 `json:"IdleTimeout"`
}

// Tag is a cluster tag.
type Tag struct {
	Key   string `json:"Key"`
	Value string `json:"Value,omitempty"`
}

// FailureDetails is why a step failed, as EMR reports it.
type FailureDetails struct {
	Reason  string `json:"Reason,omitempty"`
	Message string `json:"Message,omitempty"`
	LogFile string `json:"LogFile,omitempty"`
}

// Reason is a cluster's StateChangeReason.
type Reason struct {
	Code    string `json:"Code,omitempty"`
	Message string `json:"Message,omitempty"`
}

// Request shapes of the other operations.
type (
	describeClusterInput struct {
		ClusterId string `json:"ClusterId"`
	}
	listClustersInput struct {
		ClusterStates []string `json:"ClusterStates"`
		CreatedAfter  *epoch   `json:"CreatedAfter"`
		CreatedBefore *epoch   `json:"CreatedBefore"`
		Marker        string   `json:"Marker"`
	}
	listStepsInput struct {
		ClusterId  string   `json:"ClusterId"`
		StepIds    []string `json:"StepIds"`
		StepStates []string `json:"StepStates"`
		Marker     string   `json:"Marker"`
	}
	terminateJobFlowsInput struct {
		JobFlowIds []string `json:"JobFlowIds"`
	}
)

// Response shapes.
type (
	clusterJSON struct {
		Id                      string                `json:"Id"`
		Name                    string                `json:"Name"`
		ClusterArn              string                `json:"ClusterArn"`
		Status                  clusterStatusJSON     `json:"Status"`
		Tags                    []Tag                 `json:"Tags,omitempty"`
		ReleaseLabel            string                `json:"ReleaseLabel,omitempty"`
		LogUri                  string                `json:"LogUri,omitempty"`
		Applications            []applicationJSON     `json:"Applications,omitempty"`
		ServiceRole             string                `json:"ServiceRole,omitempty"`
		SecurityConfiguration   string                `json:"SecurityConfiguration,omitempty"`
		AutoTerminate           bool                  `json:"AutoTerminate"`
		TerminationProtected    bool                  `json:"TerminationProtected"`
		VisibleToAllUsers       bool                  `json:"VisibleToAllUsers"`
		InstanceCollectionType  string                `json:"InstanceCollectionType"`
		NormalizedInstanceHours int32                 `json:"NormalizedInstanceHours"`
		Ec2InstanceAttributes   ec2InstanceAttributes `json:"Ec2InstanceAttributes"`
		StepConcurrencyLevel    int32                 `json:"StepConcurrencyLevel"`
	}
	applicationJSON struct {
		Name    string `json:"Name"`
		Version string `json:"Version,omitempty"`
	}
	ec2InstanceAttributes struct {
		Ec2SubnetId        string `json:"Ec2SubnetId,omitempty"`
		IamInstanceProfile string `json:"IamInstanceProfile,omitempty"`
	}
	clusterStatusJSON struct {
		State             string       `json:"State"`
		StateChangeReason *Reason      `json:"StateChangeReason,omitempty"`
		Timeline          timelineJSON `json:"Timeline"`
	}
	timelineJSON struct {
		CreationDateTime *epoch `json:"CreationDateTime,omitempty"`
		ReadyDateTime    *epoch `json:"ReadyDateTime,omitempty"`
		EndDateTime      *epoch `json:"EndDateTime,omitempty"`
	}
	clusterSummaryJSON struct {
		Id                      string            `json:"Id"`
		Name                    string            `json:"Name"`
		ClusterArn              string            `json:"ClusterArn"`
		Status                  clusterStatusJSON `json:"Status"`
		NormalizedInstanceHours int32             `json:"NormalizedInstanceHours"`
	}
	stepSummaryJSON struct {
		Id              string           `json:"Id"`
		Name            string           `json:"Name"`
		ActionOnFailure string           `json:"ActionOnFailure,omitempty"`
		Config          hadoopStepConfig `json:"Config"`
		Status          stepStatusJSON   `json:"Status"`
	}
	hadoopStepConfig struct {
		Jar        string            `json:"Jar"`
		Args       []string          `json:"Args,omitempty"`
		MainClass  string            `json:"MainClass,omitempty"`
		Properties map[string]string `json:"Properties"`
	}
	stepStatusJSON struct {
		State             string           `json:"State"`
		StateChangeReason *stepReason      `json:"StateChangeReason,omitempty"`
		FailureDetails    *FailureDetails  `json:"FailureDetails,omitempty"`
		Timeline          stepTimelineJSON `json:"Timeline"`
	}
	stepReason struct {
		Code    string `json:"Code,omitempty"`
		Message string `json:"Message,omitempty"`
	}
	stepTimelineJSON struct {
		CreationDateTime *epoch `json:"CreationDateTime,omitempty"`
		StartDateTime    *epoch `json:"StartDateTime,omitempty"`
		EndDateTime      *epoch `json:"EndDateTime,omitempty"`
	}
)

// epoch is a timestamp on the wire: seconds since 1970 as a JSON number,
// with a fraction (awsJson's default timestamp format).
type epoch time.Time

func at(t time.Time) *epoch {
	if t.IsZero() {
		return nil
	}
	e := epoch(t)
	return &e
}

// MarshalJSON writes the seconds with millisecond precision.
func (e epoch) MarshalJSON() ([]byte, error) {
	ms := time.Time(e).UnixMilli()
	return strconv.AppendFloat(nil, float64(ms)/1000, 'f', 3, 64), nil
}

// UnmarshalJSON reads seconds, with or without a fraction.
func (e *epoch) UnmarshalJSON(b []byte) error {
	f, err := strconv.ParseFloat(string(b), 64)
	if err != nil {
		return err
	}
	*e = epoch(time.UnixMilli(int64(f * 1000)))
	return nil
}
