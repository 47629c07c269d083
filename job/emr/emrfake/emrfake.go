// Package emrfake is a local fake of the Amazon EMR API for tests, speaking
// its real wire protocol (awsJson1_1, as aws-sdk-go-v2/service/emr sends
// it): POST / with Content-Type application/x-amz-json-1.1, X-Amz-Target
// ElasticMapReduce.<Operation> and a SigV4 Authorization header; JSON
// bodies with the API's member names; timestamps as epoch seconds (JSON
// numbers); errors as HTTP 400/500 with {"__type": ..., "Message": ...}.
//
// A Server is an http.Handler: run it with httptest (Start does), and give
// its URL to the SDK as BaseEndpoint, in this process or in another one
// (an e2e test pointing `sluice run` at it).
//
// # What it models
//
// RunJobFlow, DescribeCluster, ListClusters (state and creation-time
// filters, newest first, Marker pagination by PageSize), ListSteps and
// TerminateJobFlows. Any other operation is answered 400
// UnknownOperationException. Each cluster follows a Script: a sequence of
// Phases (cluster state, step state, reasons), advanced one phase per
// DescribeCluster call (the first call shows the first phase), or only by
// Advance for a Manual script; the last phase lasts forever.
// TerminateJobFlows moves a cluster to TERMINATING at once (cancelling a
// step that had not ended), which the next DescribeCluster shows, and to
// TERMINATED (USER_REQUEST) at the one after. OnStepCompleted is called when a cluster's steps
// reach COMPLETED, before the answer that shows it, the way Spark's output
// exists before EMR reports the step done.
//
// Every request is recorded (Requests, Calls, Operations) before it is
// answered, including the ones answered with an injected error (FailNext,
// Throttle).
//
// # Limits
//
// It is not EMR. It validates only what the runner depends on (a name,
// a release label, instance groups or fleets but not both, roles, step
// configs); it does not check instance types, roles, subnets or release
// labels against anything. All steps of a cluster share one state. There
// are no instances, instance groups or bootstrap action results to list,
// no AddJobFlowSteps, no DescribeStep, no pagination of ListSteps, and
// NormalizedInstanceHours is always 0. Timeline times come from Clock, so
// a cluster's duration is whatever the test's clock says unless
// Script.Runtime sets it. It checks that requests are signed, not that the
// signatures are right. Consistency is immediate: a cluster is listed as
// soon as RunJobFlow returns, where EMR may take seconds.
package emrfake

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Cluster states.
const (
	Starting             = "STARTING"
	Bootstrapping        = "BOOTSTRAPPING"
	Running              = "RUNNING"
	Waiting              = "WAITING"
	Terminating          = "TERMINATING"
	Terminated           = "TERMINATED"
	TerminatedWithErrors = "TERMINATED_WITH_ERRORS"
)

// Step states.
const (
	StepPending     = "PENDING"
	StepRunning     = "RUNNING"
	StepCompleted   = "COMPLETED"
	StepCancelled   = "CANCELLED"
	StepFailed      = "FAILED"
	StepInterrupted = "INTERRUPTED"
)

// Phase is one state of a scripted cluster.
type Phase struct {
	// State is the cluster state (Starting, ..., TerminatedWithErrors).
	State string
	// Step is the state of the cluster's steps from this phase on; ""
	// keeps the previous one (PENDING at first).
	Step string
	// Reason is the cluster's StateChangeReason in this phase.
	Reason Reason
	// Failure is the steps' FailureDetails from this phase on (nil keeps
	// the previous one).
	Failure *FailureDetails
}

// Script is how a cluster goes through its states.
type Script struct {
	Phases []Phase
	// Manual clusters advance only by Advance (or TerminateJobFlows), not
	// on DescribeCluster.
	Manual bool
	// Runtime, when set, makes the cluster's Timeline EndDateTime
	// CreationDateTime + Runtime.
	Runtime time.Duration
}

// Succeeds is a cluster whose step completes: STARTING, BOOTSTRAPPING,
// RUNNING (step RUNNING), RUNNING (step COMPLETED), TERMINATING,
// TERMINATED (ALL_STEPS_COMPLETED). It is the default script.
func Succeeds() Script {
	done := Reason{Code: "ALL_STEPS_COMPLETED", Message: "Steps completed"}
	return Script{Phases: []Phase{
		{State: Starting, Reason: Reason{Message: "Configuring cluster software"}},
		{State: Bootstrapping, Reason: Reason{Message: "Running bootstrap actions"}},
		{State: Running, Step: StepRunning, Reason: Reason{Message: "Running step"}},
		{State: Running, Step: StepCompleted, Reason: Reason{Message: "Running step"}},
		{State: Terminating, Reason: done},
		{State: Terminated, Reason: done},
	}}
}

// StepFails is a cluster whose step fails with d: the cluster ends
// TERMINATED_WITH_ERRORS (STEP_FAILURE), as ActionOnFailure
// TERMINATE_CLUSTER makes it.
func StepFails(d FailureDetails) Script {
	failed := Reason{Code: "STEP_FAILURE", Message: "Shut down as step failed"}
	return Script{Phases: []Phase{
		{State: Starting},
		{State: Bootstrapping},
		{State: Running, Step: StepRunning},
		{State: Terminating, Step: StepFailed, Failure: &d, Reason: failed},
		{State: TerminatedWithErrors, Reason: failed},
	}}
}

// BootstrapFails is a cluster whose bootstrap action fails with message:
// TERMINATED_WITH_ERRORS (BOOTSTRAP_FAILURE), its step never run.
func BootstrapFails(message string) Script {
	failed := Reason{Code: "BOOTSTRAP_FAILURE", Message: message}
	return Script{Phases: []Phase{
		{State: Starting},
		{State: Bootstrapping},
		{State: Terminating, Reason: failed},
		{State: TerminatedWithErrors, Reason: failed, Step: StepCancelled},
	}}
}

// NeverStarts is a cluster that stays STARTING (until it is terminated).
func NeverStarts() Script {
	return Script{Phases: []Phase{{State: Starting, Reason: Reason{Message: "Provisioning Amazon EC2 capacity"}}}}
}

// StepInfo describes a cluster's step, for OnStepCompleted.
type StepInfo struct {
	ClusterID, ClusterName string
	StepID, StepName       string
	Jar                    string
	Args                   []string
	Tags                   map[string]string
}

// Request is one request the fake received.
type Request struct {
	// Op is the operation ("RunJobFlow"), Target the X-Amz-Target header.
	Op, Target string
	// Body is the JSON body as sent.
	Body json.RawMessage
	// Header is a copy of the request's headers; Signed says it had a
	// SigV4 Authorization header.
	Header http.Header
	Signed bool
	// Status and ErrorType are the answer's HTTP status and __type (""
	// for a success).
	Status    int
	ErrorType string
}

// APIError is an error answer: HTTP status, __type and message.
type APIError struct {
	Status  int
	Type    string
	Message string
}

// Server is the fake EMR endpoint; New or Start makes one. Set its
// exported fields before it serves.
type Server struct {
	// URL is set by Start: the endpoint to give the SDK (BaseEndpoint).
	URL string
	// Region and Account make the clusters' ARNs (default us-east-1 and
	// 000000000000).
	Region, Account string
	// Clock is the time of cluster timelines (default time.Now).
	Clock func() time.Time
	// PageSize is how many clusters a ListClusters page holds (EMR: 50).
	PageSize int
	// OnStepCompleted is called, outside the fake's lock, when a
	// cluster's steps reach COMPLETED, before the answer that shows it.
	OnStepCompleted func(StepInfo)
	// Fail reports protocol violations (an unsigned request, a wrong
	// content type); nil ignores them. They are answered with errors too.
	Fail func(msg string)

	mu       sync.Mutex
	script   Script
	clusters map[string]*cluster
	order    []string // cluster ids, oldest first
	requests []Request
	inject   map[string][]APIError
	seq      int
	changed  chan struct{} // closed and replaced on every request and Advance
}

type cluster struct {
	id, name, arn string
	in            RunJobFlowInput
	steps         []*step
	script        Script
	phases        []Phase
	pos           int
	seen          bool // DescribeCluster showed phases[pos]
	manual        bool
	created       time.Time
	ready, ended  time.Time
	state         string
	reason        Reason
	stepState     string
	failure       *FailureDetails
	stepStart     time.Time
	stepEnd       time.Time
	completed     bool // OnStepCompleted was called
}

type step struct {
	id  string
	cfg StepConfig
}

// New returns a fake whose clusters follow Succeeds until SetScript.
func New() *Server {
	return &Server{script: Succeeds(), clusters: map[string]*cluster{}, inject: map[string][]APIError{}, changed: make(chan struct{})}
}

// Start runs a new fake on a loopback port for the duration of t; a
// protocol violation fails t.
func Start(t testing.TB) *Server {
	t.Helper()
	s := New()
	s.Fail = func(msg string) { t.Errorf("emrfake: %s", msg) }
	hs := httptest.NewServer(s)
	t.Cleanup(hs.Close)
	s.URL = hs.URL
	return s
}

// SetScript sets the script of the clusters created from now on.
func (s *Server) SetScript(sc Script) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.script = sc
}

// FailNext makes the next n calls of op answer e.
func (s *Server) FailNext(op string, n int, e APIError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for range n {
		s.inject[op] = append(s.inject[op], e)
	}
}

// Throttle makes the next n calls of op answer HTTP 400
// ThrottlingException, as EMR does when its request rate is exceeded.
func (s *Server) Throttle(op string, n int) {
	s.FailNext(op, n, APIError{Status: http.StatusBadRequest, Type: "ThrottlingException", Message: "Rate exceeded"})
}

// Requests returns every request received so far, in order.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.requests)
}

// Calls returns how many requests of op were received (answered with
// errors included).
func (s *Server) Calls(op string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls(op)
}

func (s *Server) calls(op string) int {
	n := 0
	for _, r := range s.requests {
		if r.Op == op {
			n++
		}
	}
	return n
}

// Operations returns the IAM actions of the operations called so far,
// distinct and sorted: "elasticmapreduce:DescribeCluster", ...
func (s *Server) Operations() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var ops []string
	for _, r := range s.requests {
		ops = append(ops, "elasticmapreduce:"+r.Op)
	}
	slices.Sort(ops)
	return slices.Compact(ops)
}

// RunJobFlows returns the decoded bodies of the RunJobFlow requests.
func (s *Server) RunJobFlows() []RunJobFlowInput {
	var out []RunJobFlowInput
	for _, r := range s.Requests() {
		if r.Op == "RunJobFlow" {
			var in RunJobFlowInput
			_ = json.Unmarshal(r.Body, &in) // it was decoded once already
			out = append(out, in)
		}
	}
	return out
}

// Clusters returns the ids of the clusters, oldest first.
func (s *Server) Clusters() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.order)
}

// State returns cluster id's current state and its steps' state ("", ""
// for an unknown cluster).
func (s *Server) State(id string) (cluster, step string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.clusters[id]
	if c == nil {
		return "", ""
	}
	return c.state, c.stepState
}

// WaitUntil blocks until cond, called after every request and Advance,
// returns true, or ctx ends.
func (s *Server) WaitUntil(ctx context.Context, cond func() bool) error {
	for {
		s.mu.Lock()
		ch := s.changed
		s.mu.Unlock()
		if cond() {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("emrfake: condition not met: %w", context.Cause(ctx))
		}
	}
}

// WaitCalls blocks until op has been called n times, or ctx ends.
func (s *Server) WaitCalls(ctx context.Context, op string, n int) error {
	err := s.WaitUntil(ctx, func() bool { return s.Calls(op) >= n })
	if err != nil {
		return fmt.Errorf("emrfake: waiting for %d %s calls (got %d): %w", n, op, s.Calls(op), err)
	}
	return nil
}

// AddCluster creates a cluster as if RunJobFlow had been called with in
// (not recorded as a request), following sc; it returns its id.
func (s *Server) AddCluster(in RunJobFlowInput, sc Script) string {
	s.mu.Lock()
	c, done := s.create(in, sc)
	s.notify()
	s.mu.Unlock()
	s.fire(done)
	return c.id
}

// Advance moves cluster id to its script's next phase and reports
// whether there was one.
func (s *Server) Advance(id string) bool {
	s.mu.Lock()
	c := s.clusters[id]
	if c == nil {
		s.mu.Unlock()
		return false
	}
	moved, done := s.advance(c)
	c.seen = true
	s.notify()
	s.mu.Unlock()
	s.fire(done)
	return moved
}

// notify wakes WaitUntil; s.mu is held.
func (s *Server) notify() {
	close(s.changed)
	s.changed = make(chan struct{})
}

func (s *Server) now() time.Time {
	if s.Clock != nil {
		return s.Clock()
	}
	return time.Now()
}

func (s *Server) newID(prefix string) string {
	s.seq++
	return fmt.Sprintf("%s-%013d", prefix, s.seq)
}

// create makes a cluster in its first phase; s.mu is held.
func (s *Server) create(in RunJobFlowInput, sc Script) (*cluster, *StepInfo) {
	if len(sc.Phases) == 0 {
		sc = Succeeds()
	}
	region, account := s.Region, s.Account
	if region == "" {
		region = "us-east-1"
	}
	if account == "" {
		account = "000000000000"
	}
	c := &cluster{id: s.newID("j"), name: in.Name, in: in, script: sc, phases: slices.Clone(sc.Phases), manual: sc.Manual,
		created: s.now(), stepState: StepPending}
	c.arn = fmt.Sprintf("arn:aws:elasticmapreduce:%s:%s:cluster/%s", region, account, c.id)
	for _, cfg := range in.Steps {
		c.steps = append(c.steps, &step{id: s.newID("s"), cfg: cfg})
	}
	s.clusters[c.id] = c
	s.order = append(s.order, c.id)
	return c, s.enter(c)
}

// advance moves c to its next phase, if any; s.mu is held.
func (s *Server) advance(c *cluster) (bool, *StepInfo) {
	if c.pos+1 >= len(c.phases) {
		return false, nil
	}
	c.pos++
	return true, s.enter(c)
}

// enter applies c's current phase; it returns the step to report to
// OnStepCompleted, if the steps just completed. s.mu is held.
func (s *Server) enter(c *cluster) *StepInfo {
	p, now := c.phases[c.pos], s.now()
	c.state, c.reason = p.State, p.Reason
	if p.Step != "" {
		c.stepState = p.Step
	}
	if p.Failure != nil {
		f := *p.Failure
		c.failure = &f
	}
	if (c.state == Running || c.state == Waiting) && c.ready.IsZero() {
		c.ready = now
	}
	if c.stepState == StepRunning && c.stepStart.IsZero() {
		c.stepStart = now
	}
	if stepEnded(c.stepState) && c.stepEnd.IsZero() {
		c.stepEnd = now
		if c.stepStart.IsZero() && c.stepState != StepCancelled {
			c.stepStart = now
		}
	}
	if (c.state == Terminated || c.state == TerminatedWithErrors) && c.ended.IsZero() {
		c.ended = now
		if c.script.Runtime > 0 {
			c.ended = c.created.Add(c.script.Runtime)
		}
	}
	if c.stepState != StepCompleted || c.completed || len(c.steps) == 0 {
		return nil
	}
	c.completed = true
	st := c.steps[0]
	info := &StepInfo{ClusterID: c.id, ClusterName: c.name, StepID: st.id, StepName: st.cfg.Name,
		Jar: st.cfg.HadoopJarStep.Jar, Args: slices.Clone(st.cfg.HadoopJarStep.Args), Tags: map[string]string{}}
	for _, t := range c.in.Tags {
		info.Tags[t.Key] = t.Value
	}
	return info
}

func (s *Server) fire(info *StepInfo) {
	if info != nil && s.OnStepCompleted != nil {
		s.OnStepCompleted(*info)
	}
}

func stepEnded(st string) bool {
	return st == StepCompleted || st == StepFailed || st == StepCancelled || st == StepInterrupted
}

func terminated(st string) bool { return st == Terminated || st == TerminatedWithErrors }

const target = "ElasticMapReduce."

// ServeHTTP answers one EMR API request.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		s.reply(w, nil, 0, nil, &APIError{http.StatusBadRequest, "SerializationException", "cannot read the request body"})
		return
	}
	tgt := r.Header.Get("X-Amz-Target")
	op, _ := strings.CutPrefix(tgt, target)
	auth := r.Header.Get("Authorization")
	req := Request{Op: op, Target: tgt, Body: json.RawMessage(bytes.Clone(body)), Header: r.Header.Clone(),
		Signed: strings.HasPrefix(auth, "AWS4-HMAC-SHA256 ") && strings.Contains(auth, "/elasticmapreduce/aws4_request")}
	var violation string
	switch {
	case r.Method != http.MethodPost || r.URL.Path != "/":
		violation = fmt.Sprintf("%s %s: EMR takes POST /", r.Method, r.URL.Path)
	case r.Header.Get("Content-Type") != "application/x-amz-json-1.1":
		violation = fmt.Sprintf("Content-Type %q, not application/x-amz-json-1.1", r.Header.Get("Content-Type"))
	case !strings.HasPrefix(tgt, target) || op == "":
		violation = fmt.Sprintf("X-Amz-Target %q is not ElasticMapReduce.<Operation>", tgt)
	case !req.Signed:
		violation = fmt.Sprintf("%s request is not signed with SigV4 for elasticmapreduce (Authorization %q)", op, auth)
	case r.Header.Get("X-Amz-Date") == "":
		violation = op + " request has no X-Amz-Date"
	}
	if violation != "" && s.Fail != nil {
		s.Fail(violation)
	}

	s.mu.Lock()
	var out any
	var done *StepInfo
	var apiErr *APIError
	switch {
	case violation != "" && !req.Signed:
		apiErr = &APIError{http.StatusBadRequest, "MissingAuthenticationTokenException", violation}
	case violation != "":
		apiErr = &APIError{http.StatusBadRequest, "UnknownOperationException", violation}
	case len(s.inject[op]) > 0:
		e := s.inject[op][0]
		s.inject[op] = s.inject[op][1:]
		apiErr = &e
	default:
		out, done, apiErr = s.handle(op, body)
	}
	s.mu.Unlock()
	s.fire(done) // before the answer that shows the step completed
	s.reply(w, &req, http.StatusOK, out, apiErr)
}

// reply writes the answer and records req with it.
func (s *Server) reply(w http.ResponseWriter, req *Request, status int, out any, e *APIError) {
	var data []byte
	if e != nil {
		status = e.Status
		if status == 0 {
			status = http.StatusBadRequest
		}
		data, _ = json.Marshal(map[string]string{"__type": e.Type, "Message": e.Message})
	} else {
		var err error
		if data, err = json.Marshal(out); err != nil {
			status, data = http.StatusInternalServerError, []byte(`{"__type":"InternalServerError","Message":"emrfake: cannot encode the answer"}`)
		}
	}
	if req != nil {
		req.Status = status
		if e != nil {
			req.ErrorType = e.Type
		}
		s.mu.Lock()
		s.requests = append(s.requests, *req)
		s.notify()
		s.mu.Unlock()
	}
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	w.Header().Set("X-Amzn-Requestid", strconv.FormatInt(time.Now().UnixNano(), 36))
	w.Header().Set("Content-Length", strconv.Itoa(len(data)))
	w.WriteHeader(status)
	_, _ = w.Write(data)
}

func invalid(typ, format string, args ...any) *APIError {
	return &APIError{Status: http.StatusBadRequest, Type: typ, Message: fmt.Sprintf(format, args...)}
}

// handle runs one operation; s.mu is held.
func (s *Server) handle(op string, body []byte) (any, *StepInfo, *APIError) {
	decode := func(v any) *APIError {
		if err := json.Unmarshal(body, v); err != nil {
			return invalid("SerializationException", "%s: %v", op, err)
		}
		return nil
	}
	switch op {
	case "RunJobFlow":
		var in RunJobFlowInput
		if e := decode(&in); e != nil {
			return nil, nil, e
		}
		if e := validate(in); e != nil {
			return nil, nil, e
		}
		c, done := s.create(in, s.script)
		return map[string]string{"JobFlowId": c.id, "ClusterArn": c.arn}, done, nil
	case "DescribeCluster":
		var in describeClusterInput
		if e := decode(&in); e != nil {
			return nil, nil, e
		}
		c := s.clusters[in.ClusterId]
		if c == nil {
			return nil, nil, noSuchCluster(in.ClusterId)
		}
		var done *StepInfo
		if c.seen && !c.manual {
			_, done = s.advance(c)
		}
		c.seen = true
		return map[string]any{"Cluster": c.describe()}, done, nil
	case "ListClusters":
		var in listClustersInput
		if e := decode(&in); e != nil {
			return nil, nil, e
		}
		return s.listClusters(in)
	case "ListSteps":
		var in listStepsInput
		if e := decode(&in); e != nil {
			return nil, nil, e
		}
		c := s.clusters[in.ClusterId]
		if c == nil {
			return nil, nil, noSuchCluster(in.ClusterId)
		}
		var steps []stepSummaryJSON
		for i := len(c.steps) - 1; i >= 0; i-- { // newest first, as EMR lists them
			st := c.steps[i]
			if (len(in.StepIds) > 0 && !slices.Contains(in.StepIds, st.id)) || (len(in.StepStates) > 0 && !slices.Contains(in.StepStates, c.stepState)) {
				continue
			}
			steps = append(steps, c.stepSummary(st))
		}
		return map[string]any{"Steps": steps}, nil, nil
	case "TerminateJobFlows":
		var in terminateJobFlowsInput
		if e := decode(&in); e != nil {
			return nil, nil, e
		}
		if len(in.JobFlowIds) == 0 {
			return nil, nil, invalid("ValidationException", "1 validation error detected: Value null at 'jobFlowIds' failed to satisfy constraint: Member must not be null")
		}
		for _, id := range in.JobFlowIds {
			if s.clusters[id] == nil {
				return nil, nil, invalid("ValidationException", "Specified job flow ID not valid: %s", id)
			}
		}
		for _, id := range in.JobFlowIds {
			s.terminate(s.clusters[id])
		}
		return map[string]any{}, nil, nil
	}
	return nil, nil, invalid("UnknownOperationException", "emrfake does not implement %s", op)
}

func noSuchCluster(id string) *APIError {
	return invalid("InvalidRequestException", "Cluster id '%s' is not valid.", id)
}

// validate checks what EMR would reject in a RunJobFlow request, as far
// as the fake models it.
func validate(in RunJobFlowInput) *APIError {
	switch {
	case in.Name == "":
		return invalid("ValidationException", "1 validation error detected: Value null at 'name' failed to satisfy constraint: Member must not be null")
	case len(in.Name) > 256:
		return invalid("ValidationException", "1 validation error detected: Value at 'name' failed to satisfy constraint: Member must have length less than or equal to 256")
	case in.ReleaseLabel == "":
		return invalid("ValidationException", "Specify a release label (ReleaseLabel) for the cluster.")
	case in.Instances == nil:
		return invalid("ValidationException", "1 validation error detected: Value null at 'instances' failed to satisfy constraint: Member must not be null")
	case len(in.Instances.InstanceGroups) > 0 && len(in.Instances.InstanceFleets) > 0:
		return invalid("ValidationException", "Please specify either instance groups or instance fleets, not both.")
	case len(in.Instances.InstanceGroups) == 0 && len(in.Instances.InstanceFleets) == 0:
		return invalid("ValidationException", "Specify instance groups or instance fleets for the cluster.")
	case in.ServiceRole == "":
		return invalid("ValidationException", "ServiceRole is required for creating cluster.")
	case in.JobFlowRole == "":
		return invalid("ValidationException", "JobFlowRole (the EC2 instance profile) is required for creating cluster.")
	}
	for _, st := range in.Steps {
		if st.Name == "" || st.HadoopJarStep.Jar == "" {
			return invalid("ValidationException", "A step needs a Name and a HadoopJarStep Jar.")
		}
	}
	if p := in.AutoTerminationPolicy; p != nil && (p.IdleTimeout < 60 || p.IdleTimeout > 604800) {
		return invalid("ValidationException", "The idle timeout must be between 60 and 604800 seconds.")
	}
	return nil
}

// terminate starts c's termination; s.mu is held.
func (s *Server) terminate(c *cluster) {
	if terminated(c.state) || c.state == Terminating {
		return
	}
	step := ""
	if !stepEnded(c.stepState) {
		step = StepCancelled
	}
	user := Reason{Code: "USER_REQUEST", Message: "Terminated by user request"}
	c.phases = []Phase{{State: Terminating, Step: step, Reason: user}, {State: Terminated, Reason: user}}
	c.pos, c.seen, c.manual = 0, false, false
	s.enter(c) // a step cancelled here does not complete: nothing to fire
}

func (s *Server) listClusters(in listClustersInput) (any, *StepInfo, *APIError) {
	var match []*cluster
	for i := len(s.order) - 1; i >= 0; i-- { // newest first
		c := s.clusters[s.order[i]]
		if len(in.ClusterStates) > 0 && !slices.Contains(in.ClusterStates, c.state) {
			continue
		}
		if in.CreatedAfter != nil && c.created.Before(time.Time(*in.CreatedAfter)) {
			continue
		}
		if in.CreatedBefore != nil && c.created.After(time.Time(*in.CreatedBefore)) {
			continue
		}
		match = append(match, c)
	}
	size := s.PageSize
	if size <= 0 {
		size = 50
	}
	start := 0
	if in.Marker != "" {
		n, err := strconv.Atoi(in.Marker)
		if err != nil || n < 0 || n > len(match) {
			return nil, nil, invalid("InvalidRequestException", "Invalid marker %q", in.Marker)
		}
		start = n
	}
	end := min(start+size, len(match))
	page := []clusterSummaryJSON{}
	for _, c := range match[start:end] {
		page = append(page, clusterSummaryJSON{Id: c.id, Name: c.name, ClusterArn: c.arn, Status: c.status()})
	}
	out := map[string]any{"Clusters": page}
	if end < len(match) {
		out["Marker"] = strconv.Itoa(end)
	}
	return out, nil, nil
}

func (c *cluster) status() clusterStatusJSON {
	st := clusterStatusJSON{State: c.state, Timeline: timelineJSON{CreationDateTime: at(c.created), ReadyDateTime: at(c.ready), EndDateTime: at(c.ended)}}
	if c.reason != (Reason{}) {
		r := c.reason
		st.StateChangeReason = &r
	}
	return st
}

func (c *cluster) describe() clusterJSON {
	in := c.in
	out := clusterJSON{Id: c.id, Name: c.name, ClusterArn: c.arn, Status: c.status(), Tags: in.Tags, ReleaseLabel: in.ReleaseLabel,
		LogUri: in.LogUri, ServiceRole: in.ServiceRole, SecurityConfiguration: in.SecurityConfiguration,
		InstanceCollectionType: "INSTANCE_GROUP", StepConcurrencyLevel: 1,
		Ec2InstanceAttributes: ec2InstanceAttributes{IamInstanceProfile: in.JobFlowRole}}
	if inst := in.Instances; inst != nil {
		out.AutoTerminate = inst.KeepJobFlowAliveWhenNoSteps == nil || !*inst.KeepJobFlowAliveWhenNoSteps
		out.TerminationProtected = inst.TerminationProtected != nil && *inst.TerminationProtected
		out.Ec2InstanceAttributes.Ec2SubnetId = inst.Ec2SubnetId
		if len(inst.InstanceFleets) > 0 {
			out.InstanceCollectionType = "INSTANCE_FLEET"
			if len(inst.Ec2SubnetIds) > 0 {
				out.Ec2InstanceAttributes.Ec2SubnetId = inst.Ec2SubnetIds[0]
			}
		}
	}
	out.VisibleToAllUsers = in.VisibleToAllUsers == nil || *in.VisibleToAllUsers
	for _, a := range in.Applications {
		out.Applications = append(out.Applications, applicationJSON{Name: a.Name})
	}
	return out
}

func (c *cluster) stepSummary(st *step) stepSummaryJSON {
	out := stepSummaryJSON{Id: st.id, Name: st.cfg.Name, ActionOnFailure: st.cfg.ActionOnFailure,
		Config: hadoopStepConfig{Jar: st.cfg.HadoopJarStep.Jar, Args: st.cfg.HadoopJarStep.Args, MainClass: st.cfg.HadoopJarStep.MainClass, Properties: map[string]string{}},
		Status: stepStatusJSON{State: c.stepState, Timeline: stepTimelineJSON{CreationDateTime: at(c.created), StartDateTime: at(c.stepStart), EndDateTime: at(c.stepEnd)}}}
	switch c.stepState {
	case StepFailed, StepInterrupted:
		out.Status.FailureDetails = c.failure
	case StepCancelled:
		out.Status.StateChangeReason = &stepReason{Code: "NONE", Message: "Cancelled: the cluster terminated before the step ran"}
	}
	return out
}
