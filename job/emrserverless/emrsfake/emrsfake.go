// Package emrsfake is a local fake of the Amazon EMR Serverless API for
// tests: an http.Handler speaking the REST JSON protocol (restJson1) that
// aws-sdk-go-v2/service/emrserverless sends, so tests drive the real SDK
// client against it (BaseEndpoint = the fake's URL, static credentials).
//
// # Operations
//
//   - StartJobRun, POST /applications/{applicationId}/jobruns: validates
//     the body (required members, lengths, the execution role's ARN form,
//     tag syntax) and answers ValidationException for a bad one; an unknown
//     application is a ResourceNotFoundException (404). It is idempotent on
//     clientToken per application: the same token answers the same jobRunId
//     and creates nothing (the request is recorded with Repeat set).
//   - GetJobRun, GET /applications/{applicationId}/jobruns/{jobRunId}:
//     answers the job run's current step, then moves to the next step of
//     its script (see Step), so states advance one per call.
//   - CancelJobRun, DELETE /applications/{applicationId}/jobruns/{jobRunId}:
//     a job run that has not ended answers CANCELLING on the next
//     GetJobRun and CANCELLED on the one after; cancelling one that has
//     ended is a ValidationException.
//   - GetApplication, GET /applications/{applicationId}.
//
// Timestamps are epoch seconds (JSON numbers), errors carry the
// X-Amzn-ErrorType header and a {"message": ...} body, as the service does.
// Requests that break the protocol (an unknown path or method, a missing
// SigV4 Authorization header, a body that is no JSON or has unknown
// members) are answered with an error (403 without a signature, else 400),
// marked in Request.Violation and reported through Options.Fail (Start:
// the test's Errorf).
//
// Tests script job runs (Options.Script, Server.ScriptNew, Server.Set),
// inject errors for the next N calls of an operation (Server.FailNext,
// Server.Throttle), read every request back (Server.Requests) and wait for
// a condition (Server.WaitFor) instead of sleeping. Operations lists the
// IAM actions the requests needed, for checking an IAM policy. A test in
// another process serves New's handler on its own http.Server.
//
// # Limits
//
// One account and region; no applications are created or started through
// the API (Options.Applications, Server.AddApplication), and an
// application's state does not gate job runs. No pagination, ListJobRuns,
// sessions, tagging operations, dashboards or attempts/retry policies; the
// SigV4 signature is checked for presence and scope only, not verified.
// Whether the real service rejects a repeated clientToken with different
// parameters, or a CancelJobRun of an ended job run, is not documented; the
// fake returns the first job run for the token, and a ValidationException
// for the cancel. Concurrency: a Server is safe for concurrent use.
package emrsfake

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// Account and Region are the fake's account id and region, used in ARNs.
const (
	Account = "000000000000"
	Region  = "us-east-1"
)

// Job run states, as the service spells them.
const (
	Submitted  = "SUBMITTED"
	Pending    = "PENDING"
	Scheduled  = "SCHEDULED"
	Queued     = "QUEUED"
	Running    = "RUNNING"
	Success    = "SUCCESS"
	Failed     = "FAILED"
	Cancelling = "CANCELLING"
	Cancelled  = "CANCELLED"
)

// Terminal reports whether state is one a job run ends in.
func Terminal(state string) bool {
	return state == Success || state == Failed || state == Cancelled
}

var states = []string{Submitted, Pending, Scheduled, Queued, Running, Success, Failed, Cancelling, Cancelled}

// Step is one state of a job run's script.
type Step struct {
	// State is one of the job run states (SUBMITTED … CANCELLED).
	State string
	// Details is the job run's stateDetails in this step.
	Details string
	// ExecutionSeconds is totalExecutionDurationSeconds once the job run
	// has ended (0: the time from its first RUNNING step to its end, by
	// the fake's clock, rounded up).
	ExecutionSeconds int32
}

// DefaultScript is the script of a job run when Options.Script is empty.
var DefaultScript = []Step{{State: Submitted}, {State: Running}, {State: Success}}

// Options configures a Server; the zero value works.
type Options struct {
	// Applications are the ids of the applications that exist.
	Applications []string
	// Script is every new job run's sequence of states (default
	// DefaultScript): a job run is created in Script[0], and each GetJobRun
	// answers the current step and then moves to the next one; the last
	// step stays.
	Script []Step
	// Clock is the fake's time (default time.Now).
	Clock func() time.Time
	// Fail is called with a description of every protocol violation (nil:
	// violations are only answered with an error).
	Fail func(msg string)
}

// Request is one request the fake served.
type Request struct {
	// Operation is the API operation ("StartJobRun"); "" for a request
	// that matched none.
	Operation string
	// Method, Path and Query are the HTTP request's.
	Method string
	Path   string
	Query  url.Values
	// Body is the decoded JSON body (nil when there is none).
	Body map[string]any
	// Signed reports whether the request carried a SigV4 Authorization
	// header.
	Signed bool
	// Status is the HTTP status answered; ErrorCode the error type
	// answered ("" on success).
	Status    int
	ErrorCode string
	// ApplicationID and JobRunID are the ids the request was about.
	ApplicationID, JobRunID string
	// State is the state a GetJobRun answered.
	State string
	// Repeat is set for a StartJobRun whose clientToken had been seen:
	// it answered the existing job run and created nothing.
	Repeat bool
	// Violation describes how the request broke the protocol ("" if it
	// did not).
	Violation string
}

// JobRun is a snapshot of a job run the fake holds.
type JobRun struct {
	// ApplicationID, ID and ARN identify the job run.
	ApplicationID, ID, ARN string
	// Name, ClientToken and ExecutionRole are as sent to StartJobRun.
	Name          string
	ClientToken   string
	ExecutionRole string
	// EntryPoint, Args and SparkSubmitParameters are the sparkSubmit job
	// driver as sent.
	EntryPoint            string
	Args                  []string
	SparkSubmitParameters string
	// LogURI is the S3 monitoring log URI as sent ("" if none).
	LogURI string
	// TimeoutMinutes is executionTimeoutMinutes as sent (0: not sent).
	TimeoutMinutes int64
	// Tags are the tags as sent.
	Tags map[string]string
	// State and Details are the current step's state and stateDetails.
	State, Details string
	// Remaining is the rest of the script, after the current step.
	Remaining []Step
	// Created, Updated, Started and Ended are the job run's times by the
	// fake's clock (Started and Ended zero until it runs and ends).
	Created, Updated, Started, Ended time.Time
	// Starts counts the StartJobRun calls that answered this job run (more
	// than 1: repeated client tokens); Gets and Cancels count GetJobRun and
	// CancelJobRun calls.
	Starts, Gets, Cancels int
}

type jobRun struct {
	JobRun
	executionSeconds int32
	body             map[string]any // the configurationOverrides and jobDriver as sent, echoed back
}

// Server is the fake. It is an http.Handler; Start also serves it on a
// loopback port.
type Server struct {
	// URL is the endpoint when started with Start ("" for New).
	URL string

	opts Options

	mu      sync.Mutex
	apps    map[string]time.Time // id → created
	runs    map[string]*jobRun   // app + "/" + id
	order   []string             // job run keys in creation order
	tokens  map[string]string    // app + "\x00" + clientToken → job run id
	reqs    []Request
	inject  []injection
	nextID  int
	seq     int
	changed chan struct{}
	mux     *http.ServeMux
}

type injection struct {
	op      string
	n       int
	status  int
	code    string
	message string
}

// New returns a fake with opts (nil: the zero Options).
func New(opts *Options) *Server {
	s := &Server{apps: map[string]time.Time{}, runs: map[string]*jobRun{}, tokens: map[string]string{}, changed: make(chan struct{})}
	if opts != nil {
		s.opts = *opts
	}
	if s.opts.Clock == nil {
		s.opts.Clock = time.Now
	}
	if len(s.opts.Script) == 0 {
		s.opts.Script = DefaultScript
	}
	for _, st := range s.opts.Script {
		if !slices.Contains(states, st.State) {
			panic(fmt.Sprintf("emrsfake: Options.Script: unknown job run state %q", st.State))
		}
	}
	for _, a := range s.opts.Applications {
		s.apps[a] = s.opts.Clock()
	}
	s.mux = http.NewServeMux()
	s.route("StartJobRun", "POST /applications/{applicationId}/jobruns", s.startJobRun)
	s.route("GetJobRun", "GET /applications/{applicationId}/jobruns/{jobRunId}", s.getJobRun)
	s.route("CancelJobRun", "DELETE /applications/{applicationId}/jobruns/{jobRunId}", s.cancelJobRun)
	s.route("GetApplication", "GET /applications/{applicationId}", s.getApplication)
	s.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		rec := s.record(r, "")
		s.violation(rec, "no operation is %s %s", r.Method, r.URL.Path)
		s.answer(w, rec, http.StatusBadRequest, apiError("UnknownOperationException", fmt.Sprintf("no operation is %s %s", r.Method, r.URL.Path)))
	})
	return s
}

// Start serves a fake with opts on a loopback port until t ends; protocol
// violations fail t (unless opts.Fail is set).
func Start(t testing.TB, opts *Options) *Server {
	t.Helper()
	var o Options
	if opts != nil {
		o = *opts
	}
	if o.Fail == nil {
		o.Fail = func(msg string) { t.Errorf("emrsfake: %s", msg) }
	}
	s := New(&o)
	hs := httptest.NewServer(s)
	t.Cleanup(hs.Close)
	s.URL = hs.URL
	return s
}

// ServeHTTP serves one API request.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

// route registers an operation: the request is recorded, checked for a
// signature, subjected to injected errors and then handled.
func (s *Server) route(op, pattern string, h func(*http.Request, *Request) (int, any)) {
	s.mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		rec := s.record(r, op)
		if !rec.Signed || !strings.Contains(r.Header.Get("Authorization"), "/emr-serverless/aws4_request") {
			s.violation(rec, "%s without a SigV4 Authorization header for service emr-serverless", op)
			s.answer(w, rec, http.StatusForbidden, apiError("MissingAuthenticationTokenException", "Missing Authentication Token"))
			return
		}
		if r.Method == http.MethodPost {
			if ct := r.Header.Get("Content-Type"); ct != "application/json" {
				s.violation(rec, "%s with Content-Type %q, want application/json", op, ct)
				s.answer(w, rec, http.StatusBadRequest, apiError("SerializationException", "bad content type"))
				return
			}
			if rec.Body == nil {
				s.violation(rec, "%s without a JSON object body", op)
				s.answer(w, rec, http.StatusBadRequest, apiError("SerializationException", "body is not a JSON object"))
				return
			}
		}
		if inj, ok := s.injected(op); ok {
			s.answer(w, rec, inj.status, apiError(inj.code, inj.message))
			return
		}
		status, body := h(r, rec)
		s.answer(w, rec, status, body)
	})
}

// record starts the record of a request; answer completes and stores it.
func (s *Server) record(r *http.Request, op string) *Request {
	rec := &Request{Operation: op, Method: r.Method, Path: r.URL.Path, Query: r.URL.Query(),
		Signed:        strings.HasPrefix(r.Header.Get("Authorization"), "AWS4-HMAC-SHA256 "),
		ApplicationID: r.PathValue("applicationId"), JobRunID: r.PathValue("jobRunId")}
	if r.Body != nil {
		var buf bytes.Buffer
		_, _ = buf.ReadFrom(r.Body)
		if buf.Len() > 0 {
			var m map[string]any
			if json.Unmarshal(buf.Bytes(), &m) == nil {
				rec.Body = m
			}
		}
	}
	return rec
}

func (s *Server) violation(rec *Request, format string, args ...any) {
	rec.Violation = fmt.Sprintf(format, args...)
	if s.opts.Fail != nil {
		s.opts.Fail(rec.Violation)
	}
}

type errorBody struct {
	code    string
	Message string `json:"message"`
}

func apiError(code, msg string) errorBody { return errorBody{code: code, Message: msg} }

// answer writes the response and stores the request's record.
func (s *Server) answer(w http.ResponseWriter, rec *Request, status int, body any) {
	rec.Status = status
	if e, ok := body.(errorBody); ok {
		rec.ErrorCode = e.code
		w.Header().Set("X-Amzn-ErrorType", e.code)
	}
	data, err := json.Marshal(body)
	if err != nil {
		status, data = http.StatusInternalServerError, []byte(`{"message":"emrsfake: cannot encode the response"}`)
	}
	s.mu.Lock()
	s.seq++
	id := s.seq
	s.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Amzn-RequestId", fmt.Sprintf("emrsfake-%d", id))
	w.WriteHeader(status)
	_, _ = w.Write(data)
	// Recorded once answered: a recorded request's response has been sent.
	s.mu.Lock()
	s.reqs = append(s.reqs, *rec)
	s.notifyLocked()
	s.mu.Unlock()
}

func (s *Server) notifyLocked() {
	close(s.changed)
	s.changed = make(chan struct{})
}

func (s *Server) injected(op string) (injection, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := range s.inject {
		in := &s.inject[i]
		if in.n > 0 && (in.op == "" || in.op == op) {
			in.n--
			return *in, true
		}
	}
	return injection{}, false
}

// FailNext answers the next n calls of operation op ("" for any) with an
// error of HTTP status and type code (for example 500,
// "InternalServerException"), without handling them.
func (s *Server) FailNext(op string, n, status int, code, message string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.inject = append(s.inject, injection{op: op, n: n, status: status, code: code, message: message})
}

// Throttle answers the next n calls of op ("" for any) with a 429
// ThrottlingException.
func (s *Server) Throttle(op string, n int) {
	s.FailNext(op, n, http.StatusTooManyRequests, "ThrottlingException", "Rate exceeded")
}

// ScriptNew sets the script of the job runs started from now on (see
// Options.Script); it panics on an unknown state.
func (s *Server) ScriptNew(steps ...Step) {
	if len(steps) == 0 {
		steps = DefaultScript
	}
	for _, st := range steps {
		if !slices.Contains(states, st.State) {
			panic(fmt.Sprintf("emrsfake: ScriptNew: unknown job run state %q", st.State))
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.opts.Script = slices.Clone(steps)
}

// AddApplication makes application id exist.
func (s *Server) AddApplication(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.apps[id] = s.opts.Clock()
	s.notifyLocked()
}

// Set replaces the script of job run (app, id): it is now in steps[0] and
// moves through the rest, one step per GetJobRun.
func (s *Server) Set(app, id string, steps ...Step) error {
	if len(steps) == 0 {
		return fmt.Errorf("emrsfake: Set of job run %s/%s needs a step", app, id)
	}
	for _, st := range steps {
		if !slices.Contains(states, st.State) {
			return fmt.Errorf("emrsfake: Set of job run %s/%s: unknown state %q", app, id, st.State)
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	jr := s.runs[app+"/"+id]
	if jr == nil {
		return fmt.Errorf("emrsfake: no job run %s/%s", app, id)
	}
	s.enterLocked(jr, steps[0])
	jr.Remaining = slices.Clone(steps[1:])
	s.notifyLocked()
	return nil
}

// enterLocked moves jr into step st.
func (s *Server) enterLocked(jr *jobRun, st Step) {
	now := s.opts.Clock()
	if st.State != jr.State {
		jr.Updated = now
	}
	jr.State, jr.Details = st.State, st.Details
	if st.ExecutionSeconds != 0 {
		jr.executionSeconds = st.ExecutionSeconds
	}
	if st.State == Running && jr.Started.IsZero() {
		jr.Started = now
	}
	if Terminal(st.State) && jr.Ended.IsZero() {
		jr.Ended = now
	}
}

// Requests returns every request served so far, in order.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.reqs)
}

// Count returns how many requests of operation op were served (failed
// ones included).
func (s *Server) Count(op string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, r := range s.reqs {
		if r.Operation == op {
			n++
		}
	}
	return n
}

// iamActions maps an operation to the IAM actions a caller needs for it.
var iamActions = map[string][]string{
	"StartJobRun":    {"emr-serverless:StartJobRun", "iam:PassRole"},
	"GetJobRun":      {"emr-serverless:GetJobRun"},
	"CancelJobRun":   {"emr-serverless:CancelJobRun"},
	"GetApplication": {"emr-serverless:GetApplication"},
}

// Operations returns the distinct IAM actions the requests so far needed,
// sorted: "emr-serverless:<Operation>" per operation called, and
// "iam:PassRole" with StartJobRun (which passes the execution role).
func (s *Server) Operations() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, r := range s.reqs {
		for _, a := range iamActions[r.Operation] {
			if !slices.Contains(out, a) {
				out = append(out, a)
			}
		}
	}
	slices.Sort(out)
	return out
}

// JobRuns returns every job run, in creation order.
func (s *Server) JobRuns() []JobRun {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]JobRun, 0, len(s.order))
	for _, k := range s.order {
		out = append(out, s.runs[k].snapshot())
	}
	return out
}

// JobRun returns job run (app, id).
func (s *Server) JobRun(app, id string) (JobRun, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	jr := s.runs[app+"/"+id]
	if jr == nil {
		return JobRun{}, false
	}
	return jr.snapshot(), true
}

func (jr *jobRun) snapshot() JobRun {
	c := jr.JobRun
	c.Args = slices.Clone(c.Args)
	c.Remaining = slices.Clone(c.Remaining)
	if c.Tags != nil {
		m := make(map[string]string, len(c.Tags))
		for k, v := range c.Tags {
			m[k] = v
		}
		c.Tags = m
	}
	return c
}

// WaitFor returns once cond holds, checking it at once and after every
// request and change; it returns ctx's error if ctx ends first. cond may
// call the Server's methods.
func (s *Server) WaitFor(ctx context.Context, cond func() bool) error {
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
			return fmt.Errorf("emrsfake: condition not met: %w", context.Cause(ctx))
		}
	}
}

// startJobRunBody is StartJobRun's body; unknown members are a protocol
// violation.
type startJobRunBody struct {
	ClientToken             *string           `json:"clientToken"`
	ExecutionRoleArn        *string           `json:"executionRoleArn"`
	ExecutionTimeoutMinutes *int64            `json:"executionTimeoutMinutes"`
	Name                    *string           `json:"name"`
	Tags                    map[string]string `json:"tags"`
	Mode                    *string           `json:"mode"`
	ExecutionIamPolicy      json.RawMessage   `json:"executionIamPolicy"`
	RetryPolicy             json.RawMessage   `json:"retryPolicy"`
	JobDriver               *struct {
		SparkSubmit *struct {
			EntryPoint            *string  `json:"entryPoint"`
			EntryPointArguments   []string `json:"entryPointArguments"`
			SparkSubmitParameters *string  `json:"sparkSubmitParameters"`
		} `json:"sparkSubmit"`
		Hive json.RawMessage `json:"hive"`
	} `json:"jobDriver"`
	ConfigurationOverrides *struct {
		ApplicationConfiguration    json.RawMessage `json:"applicationConfiguration"`
		DiskEncryptionConfiguration json.RawMessage `json:"diskEncryptionConfiguration"`
		MonitoringConfiguration     *struct {
			S3MonitoringConfiguration *struct {
				LogURI           *string `json:"logUri"`
				EncryptionKeyArn *string `json:"encryptionKeyArn"`
			} `json:"s3MonitoringConfiguration"`
			CloudWatchLoggingConfiguration            json.RawMessage `json:"cloudWatchLoggingConfiguration"`
			ManagedPersistenceMonitoringConfiguration json.RawMessage `json:"managedPersistenceMonitoringConfiguration"`
			PrometheusMonitoringConfiguration         json.RawMessage `json:"prometheusMonitoringConfiguration"`
		} `json:"monitoringConfiguration"`
	} `json:"configurationOverrides"`
}

var (
	roleARN  = regexp.MustCompile(`^arn:aws[a-z-]*:iam::\d{12}:role/[\w+=,.@/-]+$`)
	tagChars = regexp.MustCompile(`^[A-Za-z0-9 /_.:=+@-]*$`)
)

func (s *Server) startJobRun(r *http.Request, rec *Request) (int, any) {
	app := rec.ApplicationID
	raw, _ := json.Marshal(rec.Body)
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	var in startJobRunBody
	if err := dec.Decode(&in); err != nil {
		s.violation(rec, "StartJobRun body: %v", err)
		return http.StatusBadRequest, apiError("SerializationException", err.Error())
	}
	if msg := validateStart(&in); msg != "" {
		return http.StatusBadRequest, apiError("ValidationException", msg)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.apps[app]; !ok {
		return http.StatusNotFound, apiError("ResourceNotFoundException", fmt.Sprintf("Application %s does not exist", app))
	}
	tokenKey := app + "\x00" + *in.ClientToken
	if id, ok := s.tokens[tokenKey]; ok {
		jr := s.runs[app+"/"+id]
		jr.Starts++
		rec.Repeat, rec.JobRunID = true, id
		return http.StatusOK, map[string]any{"applicationId": app, "jobRunId": id, "arn": jr.ARN}
	}
	s.nextID++
	id := fmt.Sprintf("00fjr%011d", s.nextID)
	now := s.opts.Clock()
	jr := &jobRun{JobRun: JobRun{ApplicationID: app, ID: id, ARN: fmt.Sprintf("arn:aws:emr-serverless:%s:%s:/applications/%s/jobruns/%s", Region, Account, app, id),
		ClientToken: *in.ClientToken, ExecutionRole: *in.ExecutionRoleArn, Created: now, Updated: now, Starts: 1, Tags: in.Tags},
		body: map[string]any{}}
	if in.Name != nil {
		jr.Name = *in.Name
	}
	if in.ExecutionTimeoutMinutes != nil {
		jr.TimeoutMinutes = *in.ExecutionTimeoutMinutes
	}
	if sp := in.JobDriver.SparkSubmit; sp != nil {
		jr.EntryPoint, jr.Args = *sp.EntryPoint, sp.EntryPointArguments
		if sp.SparkSubmitParameters != nil {
			jr.SparkSubmitParameters = *sp.SparkSubmitParameters
		}
	}
	if co := in.ConfigurationOverrides; co != nil && co.MonitoringConfiguration != nil && co.MonitoringConfiguration.S3MonitoringConfiguration != nil &&
		co.MonitoringConfiguration.S3MonitoringConfiguration.LogURI != nil {
		jr.LogURI = *co.MonitoringConfiguration.S3MonitoringConfiguration.LogURI
	}
	jr.body["jobDriver"] = rec.Body["jobDriver"]
	if co, ok := rec.Body["configurationOverrides"]; ok {
		jr.body["configurationOverrides"] = co
	}
	s.enterLocked(jr, s.opts.Script[0])
	jr.Remaining = slices.Clone(s.opts.Script[1:])
	s.runs[app+"/"+id] = jr
	s.order = append(s.order, app+"/"+id)
	s.tokens[tokenKey] = id
	rec.JobRunID = id
	return http.StatusOK, map[string]any{"applicationId": app, "jobRunId": id, "arn": jr.ARN}
}

// validateStart checks StartJobRun's members as the service documents
// them; it returns the ValidationException message, "" when valid.
func validateStart(in *startJobRunBody) string {
	switch {
	case in.ClientToken == nil || len(*in.ClientToken) < 1 || len(*in.ClientToken) > 64:
		return "clientToken must be 1 to 64 characters"
	case in.ExecutionRoleArn == nil || !roleARN.MatchString(*in.ExecutionRoleArn):
		return "executionRoleArn must be an IAM role ARN"
	case in.JobDriver == nil || (in.JobDriver.SparkSubmit == nil) == (in.JobDriver.Hive == nil):
		return "jobDriver must have exactly one of sparkSubmit and hive"
	case in.Name != nil && (len(*in.Name) < 1 || len(*in.Name) > 256):
		return "name must be 1 to 256 characters"
	case in.ExecutionTimeoutMinutes != nil && (*in.ExecutionTimeoutMinutes < 0 || *in.ExecutionTimeoutMinutes > 1000000):
		return "executionTimeoutMinutes must be between 0 and 1000000"
	case len(in.Tags) > 200:
		return "at most 200 tags"
	}
	if sp := in.JobDriver.SparkSubmit; sp != nil {
		if sp.EntryPoint == nil || len(*sp.EntryPoint) < 1 || len(*sp.EntryPoint) > 256 {
			return "sparkSubmit.entryPoint must be 1 to 256 characters"
		}
		for i, a := range sp.EntryPointArguments {
			if len(a) < 1 || len(a) > 10280 {
				return fmt.Sprintf("sparkSubmit.entryPointArguments[%d] must be 1 to 10280 characters", i)
			}
		}
		if sp.SparkSubmitParameters != nil && (len(*sp.SparkSubmitParameters) < 1 || len(*sp.SparkSubmitParameters) > 102400) {
			return "sparkSubmit.sparkSubmitParameters must be 1 to 102400 characters"
		}
	}
	for k, v := range in.Tags {
		if len(k) < 1 || len(k) > 128 || len(v) > 256 || !tagChars.MatchString(k) || !tagChars.MatchString(v) {
			return fmt.Sprintf("tag %q=%q: keys are 1 to 128 and values up to 256 of the characters A-Za-z0-9 /_.:=+@-", k, v)
		}
	}
	if co := in.ConfigurationOverrides; co != nil && co.MonitoringConfiguration != nil && co.MonitoringConfiguration.S3MonitoringConfiguration != nil {
		if u := co.MonitoringConfiguration.S3MonitoringConfiguration.LogURI; u != nil && !strings.HasPrefix(*u, "s3://") {
			return "logUri must be an s3:// URI"
		}
	}
	return ""
}

func (s *Server) lookupLocked(app, id string) (*jobRun, int, any) {
	if _, ok := s.apps[app]; !ok {
		return nil, http.StatusNotFound, apiError("ResourceNotFoundException", fmt.Sprintf("Application %s does not exist", app))
	}
	jr := s.runs[app+"/"+id]
	if jr == nil {
		return nil, http.StatusNotFound, apiError("ResourceNotFoundException", fmt.Sprintf("Job run %s does not exist in application %s", id, app))
	}
	return jr, 0, nil
}

func (s *Server) getJobRun(r *http.Request, rec *Request) (int, any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	jr, status, e := s.lookupLocked(rec.ApplicationID, rec.JobRunID)
	if jr == nil {
		return status, e
	}
	jr.Gets++
	rec.State = jr.State
	out := s.describeLocked(jr)
	if len(jr.Remaining) > 0 {
		s.enterLocked(jr, jr.Remaining[0])
		jr.Remaining = jr.Remaining[1:]
	}
	return http.StatusOK, map[string]any{"jobRun": out}
}

func epoch(t time.Time) float64 { return float64(t.UnixMilli()) / 1000 }

func (s *Server) describeLocked(jr *jobRun) map[string]any {
	out := map[string]any{
		"applicationId": jr.ApplicationID, "jobRunId": jr.ID, "arn": jr.ARN,
		"createdBy": fmt.Sprintf("arn:aws:iam::%s:user/emrsfake", Account), "createdAt": epoch(jr.Created), "updatedAt": epoch(jr.Updated),
		"executionRole": jr.ExecutionRole, "releaseLabel": "emr-7.5.0", "state": jr.State, "stateDetails": jr.Details,
		"jobDriver": jr.body["jobDriver"], "mode": "BATCH", "attempt": 1,
	}
	timeout := jr.TimeoutMinutes
	if timeout == 0 {
		timeout = 720 // the service's default
	}
	out["executionTimeoutMinutes"] = timeout
	if jr.Name != "" {
		out["name"] = jr.Name
	}
	if co, ok := jr.body["configurationOverrides"]; ok {
		out["configurationOverrides"] = co
	}
	if jr.Tags != nil {
		out["tags"] = jr.Tags
	}
	if !jr.Started.IsZero() {
		out["startedAt"] = epoch(jr.Started)
	}
	if Terminal(jr.State) {
		out["endedAt"] = epoch(jr.Ended)
		secs := jr.executionSeconds
		if secs == 0 && !jr.Started.IsZero() {
			secs = int32(math.Ceil(jr.Ended.Sub(jr.Started).Seconds()))
		}
		out["totalExecutionDurationSeconds"] = secs
		h := float64(secs) / 3600
		out["totalResourceUtilization"] = map[string]any{"vCPUHour": 4 * h, "memoryGBHour": 16 * h, "storageGBHour": 20 * h}
	}
	return out
}

func (s *Server) cancelJobRun(r *http.Request, rec *Request) (int, any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	jr, status, e := s.lookupLocked(rec.ApplicationID, rec.JobRunID)
	if jr == nil {
		return status, e
	}
	jr.Cancels++
	if Terminal(jr.State) {
		return http.StatusBadRequest, apiError("ValidationException", fmt.Sprintf("Job run %s is in state %s and cannot be cancelled", jr.ID, jr.State))
	}
	if jr.State != Cancelling {
		s.enterLocked(jr, Step{State: Cancelling, Details: "Job run cancellation requested"})
		jr.Remaining = []Step{{State: Cancelled, Details: "Job run was cancelled by the user"}}
	}
	return http.StatusOK, map[string]any{"applicationId": jr.ApplicationID, "jobRunId": jr.ID}
}

func (s *Server) getApplication(r *http.Request, rec *Request) (int, any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	app := rec.ApplicationID
	created, ok := s.apps[app]
	if !ok {
		return http.StatusNotFound, apiError("ResourceNotFoundException", fmt.Sprintf("Application %s does not exist", app))
	}
	return http.StatusOK, map[string]any{"application": map[string]any{
		"applicationId": app, "name": app, "arn": fmt.Sprintf("arn:aws:emr-serverless:%s:%s:/applications/%s", Region, Account, app),
		"releaseLabel": "emr-7.5.0", "type": "Spark", "state": "STARTED", "architecture": "X86_64",
		"createdAt": epoch(created), "updatedAt": epoch(created),
	}}
}
