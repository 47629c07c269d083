// Package sqsfake is a local Amazon SQS endpoint for tests: an HTTP server
// speaking the SQS JSON protocol (POST /, Content-Type
// application/x-amz-json-1.0, X-Amz-Target: AmazonSQS.<Operation>) that the
// current aws-sdk-go-v2/service/sqs uses. It exists because the Go SQS
// emulators that can be installed here (goaws v0.4.x) speak only the older
// query protocol.
//
// It implements the operations sqsqueue uses, with SQS's semantics for a
// standard queue: CreateQueue (idempotent for equal attributes,
// QueueNameExists otherwise), GetQueueUrl, ListQueues (prefix, MaxResults,
// NextToken), ListQueueTags, SendMessage (DelaySeconds, message
// attributes, MD5 digests), ReceiveMessage (long polling up to 20 s,
// per-request visibility timeout, ApproximateReceiveCount, a new receipt
// handle per receive), DeleteMessage (a stale receipt handle succeeds
// without deleting, as SQS documents), ChangeMessageVisibility
// (MessageNotInflight for a message that is not in flight under that
// handle), GetQueueAttributes (exact ApproximateNumberOfMessages,
// ...NotVisible, ...Delayed) and DeleteQueue. Messages are delivered in
// send order (real standard queues order only on a best-effort basis).
//
// Every request is checked, and anything unexpected is reported through the
// fail function (Start: t.Errorf) and answered with an error: a method other
// than POST, a path other than /, a wrong content type or target, a missing
// SigV4 Authorization header or X-Amz-Date, unknown JSON fields, missing
// required fields, out-of-range values, unknown operations. State lives in
// the Server, so a test that "restarts" a process keeps the server and
// makes a new client.
package sqsfake

import (
	"bytes"
	"crypto/md5"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Account is the account ID in the fake's queue URLs.
const Account = "000000000000"

// Region is the region the fake expects in the SigV4 credential scope.
const Region = "us-east-1"

// Server is a fake SQS endpoint.
type Server struct {
	// URL is the endpoint to give the SDK (BaseEndpoint), http://127.0.0.1:PORT.
	URL string

	fail func(string)
	now  func() time.Time
	hs   *httptest.Server

	mu      sync.Mutex
	queues  map[string]*queue // by name
	changed chan struct{}     // closed and replaced when messages may have become receivable
	closed  chan struct{}
	once    sync.Once
	calls   map[string]int
}

type queue struct {
	name, url string
	attrs     map[string]string
	tags      map[string]string
	created   time.Time
	msgs      []*message
}

type message struct {
	id, body, md5Body, md5Attrs string
	attrs                       map[string]attrValue
	sent, visibleAt, firstRecv  time.Time
	receives                    int
	handle                      string // receipt handle of the latest receive
}

type attrValue struct {
	DataType    string  `json:"DataType"`
	StringValue *string `json:"StringValue,omitempty"`
	BinaryValue []byte  `json:"BinaryValue,omitempty"`
}

// Start runs a fake on a loopback port for the duration of t; a protocol
// violation fails t.
func Start(t testing.TB) *Server {
	t.Helper()
	s := New(func(msg string) { t.Errorf("sqsfake: %s", msg) }, nil)
	t.Cleanup(s.Close)
	return s
}

// New runs a fake on a loopback port. fail is called for every protocol
// violation; now is the clock (nil: time.Now). Close stops it.
func New(fail func(string), now func() time.Time) *Server {
	if now == nil {
		now = time.Now
	}
	s := &Server{fail: fail, now: now, queues: map[string]*queue{}, changed: make(chan struct{}), closed: make(chan struct{}), calls: map[string]int{}}
	s.hs = httptest.NewServer(s)
	s.URL = s.hs.URL
	return s
}

// Close aborts waiting long polls and stops the server.
func (s *Server) Close() {
	s.once.Do(func() { close(s.closed) })
	s.hs.Close()
}

// Calls returns how many requests of operation op were served.
func (s *Server) Calls(op string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls[op]
}

// QueueNames lists the queues' names, sorted.
func (s *Server) QueueNames() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for n := range s.queues {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// apiError is an SQS error answer.
type apiError struct {
	status    int
	typ       string
	queryCode string // x-amzn-query-error code
	msg       string
}

func (e *apiError) Error() string { return e.typ + ": " + e.msg }

func clientErr(typ, query, format string, a ...any) *apiError {
	return &apiError{status: http.StatusBadRequest, typ: typ, queryCode: query, msg: fmt.Sprintf(format, a...)}
}

func invalidParam(format string, a ...any) *apiError {
	return clientErr("InvalidParameterValue", "InvalidParameterValue", format, a...)
}

// violation reports a request the SDK should never send and answers it
// with an error.
func (s *Server) violation(w http.ResponseWriter, format string, a ...any) {
	msg := fmt.Sprintf(format, a...)
	s.fail(msg)
	writeErr(w, clientErr("InvalidRequest", "InvalidRequest", "%s", msg))
}

func writeErr(w http.ResponseWriter, e *apiError) {
	w.Header().Set("Content-Type", "application/x-amz-json-1.0")
	w.Header().Set("x-amzn-query-error", e.queryCode+";Sender")
	w.WriteHeader(e.status)
	_ = json.NewEncoder(w).Encode(map[string]string{"__type": e.typ, "message": e.msg})
}

var authRE = regexp.MustCompile(`^AWS4-HMAC-SHA256 Credential=[^/]+/\d{8}/([a-z0-9-]+)/sqs/aws4_request, SignedHeaders=[a-z0-9;-]+, Signature=[0-9a-f]{64}$`)

// ServeHTTP checks and serves one request.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost || r.URL.Path != "/" {
		s.violation(w, "%s %s: want POST /", r.Method, r.URL.Path)
		return
	}
	if ct := r.Header.Get("Content-Type"); ct != "application/x-amz-json-1.0" {
		s.violation(w, "Content-Type %q, want application/x-amz-json-1.0", ct)
		return
	}
	op, ok := strings.CutPrefix(r.Header.Get("X-Amz-Target"), "AmazonSQS.")
	if !ok {
		s.violation(w, "X-Amz-Target %q, want AmazonSQS.<Operation>", r.Header.Get("X-Amz-Target"))
		return
	}
	auth := r.Header.Get("Authorization")
	m := authRE.FindStringSubmatch(auth)
	if m == nil {
		s.violation(w, "%s: Authorization %q is not a SigV4 signature for service sqs", op, auth)
		return
	}
	if r.Header.Get("X-Amz-Date") == "" {
		s.violation(w, "%s: no X-Amz-Date header", op)
		return
	}
	var body bytes.Buffer
	if _, err := body.ReadFrom(r.Body); err != nil {
		return // the client went away
	}
	h, ok := handlers[op]
	if !ok {
		s.violation(w, "unsupported operation %s", op)
		return
	}
	s.mu.Lock()
	s.calls[op]++
	s.mu.Unlock()
	out, err := h(s, r, body.Bytes())
	if err != nil {
		if e, ok := err.(*apiError); ok {
			if e.typ == "InvalidRequest" {
				s.fail(op + ": " + e.msg)
			}
			writeErr(w, e)
			return
		}
		s.violation(w, "%s: %v", op, err)
		return
	}
	if out == nil {
		return // the client went away during a long poll
	}
	w.Header().Set("Content-Type", "application/x-amz-json-1.0")
	_ = json.NewEncoder(w).Encode(out)
}

// decode reads a request strictly: unknown fields are violations.
func decode(body []byte, v any) error {
	d := json.NewDecoder(bytes.NewReader(body))
	d.DisallowUnknownFields()
	if err := d.Decode(v); err != nil {
		return clientErr("InvalidRequest", "InvalidRequest", "request body: %v", err)
	}
	return nil
}

func required(name string, v *string) error {
	if v == nil || *v == "" {
		return clientErr("InvalidRequest", "InvalidRequest", "missing required field %s", name)
	}
	return nil
}

type handler func(s *Server, r *http.Request, body []byte) (any, error)

var handlers = map[string]handler{
	"CreateQueue":             (*Server).createQueue,
	"GetQueueUrl":             (*Server).getQueueURL,
	"ListQueues":              (*Server).listQueues,
	"ListQueueTags":           (*Server).listQueueTags,
	"SendMessage":             (*Server).sendMessage,
	"ReceiveMessage":          (*Server).receiveMessage,
	"DeleteMessage":           (*Server).deleteMessage,
	"ChangeMessageVisibility": (*Server).changeVisibility,
	"GetQueueAttributes":      (*Server).getQueueAttributes,
	"DeleteQueue":             (*Server).deleteQueue,
}

var nameRE = regexp.MustCompile(`^[A-Za-z0-9_-]{1,80}$`)

// createAttrs are the queue attributes CreateQueue accepts, with defaults
// and limits.
var createAttrs = map[string]struct {
	def      string
	min, max int
}{
	"VisibilityTimeout":             {"30", 0, 43200},
	"MessageRetentionPeriod":        {"345600", 60, 1209600},
	"DelaySeconds":                  {"0", 0, 900},
	"MaximumMessageSize":            {"262144", 1024, 1048576},
	"ReceiveMessageWaitTimeSeconds": {"0", 0, 20},
}

func (s *Server) createQueue(r *http.Request, body []byte) (any, error) {
	var in struct {
		QueueName  *string
		Attributes map[string]string
		Tags       map[string]string `json:"tags"`
	}
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	if err := required("QueueName", in.QueueName); err != nil {
		return nil, err
	}
	if !nameRE.MatchString(*in.QueueName) {
		return nil, invalidParam("queue name %q: up to 80 characters of [A-Za-z0-9_-]", *in.QueueName)
	}
	attrs := map[string]string{}
	for k, a := range createAttrs {
		attrs[k] = a.def
	}
	for k, v := range in.Attributes {
		a, ok := createAttrs[k]
		if !ok {
			return nil, clientErr("InvalidAttributeName", "InvalidAttributeName", "unknown or unsupported attribute %s", k)
		}
		n, err := strconv.Atoi(v)
		if err != nil || n < a.min || n > a.max {
			return nil, clientErr("InvalidAttributeValue", "InvalidAttributeValue", "attribute %s=%q: want %d..%d", k, v, a.min, a.max)
		}
		attrs[k] = v
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if q, ok := s.queues[*in.QueueName]; ok {
		for k, v := range in.Attributes {
			if q.attrs[k] != v {
				return nil, clientErr("QueueNameExists", "QueueAlreadyExists", "queue %s exists with %s=%s", q.name, k, q.attrs[k])
			}
		}
		return map[string]string{"QueueUrl": q.url}, nil
	}
	q := &queue{name: *in.QueueName, url: s.URL + "/" + Account + "/" + *in.QueueName, attrs: attrs, tags: in.Tags, created: s.now()}
	s.queues[q.name] = q
	return map[string]string{"QueueUrl": q.url}, nil
}

func (s *Server) getQueueURL(r *http.Request, body []byte) (any, error) {
	var in struct {
		QueueName              *string
		QueueOwnerAWSAccountId *string
	}
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	if err := required("QueueName", in.QueueName); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	q, ok := s.queues[*in.QueueName]
	if !ok {
		return nil, clientErr("QueueDoesNotExist", "AWS.SimpleQueueService.NonExistentQueue", "the queue %s does not exist", *in.QueueName)
	}
	return map[string]string{"QueueUrl": q.url}, nil
}

func (s *Server) listQueues(r *http.Request, body []byte) (any, error) {
	var in struct {
		QueueNamePrefix *string
		MaxResults      *int
		NextToken       *string
	}
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	if in.MaxResults != nil && (*in.MaxResults < 1 || *in.MaxResults > 1000) {
		return nil, invalidParam("MaxResults %d: want 1..1000", *in.MaxResults)
	}
	s.mu.Lock()
	var names []string
	for n := range s.queues {
		if in.QueueNamePrefix == nil || strings.HasPrefix(n, *in.QueueNamePrefix) {
			names = append(names, n)
		}
	}
	s.mu.Unlock()
	sort.Strings(names)
	start := 0
	if in.NextToken != nil {
		if in.MaxResults == nil {
			return nil, invalidParam("NextToken without MaxResults")
		}
		i, err := strconv.Atoi(*in.NextToken)
		if err != nil || i < 0 || i > len(names) {
			return nil, invalidParam("NextToken %q is not one this server gave", *in.NextToken)
		}
		start = i
	}
	out := map[string]any{}
	end := len(names)
	if in.MaxResults != nil && start+*in.MaxResults < end {
		end = start + *in.MaxResults
		out["NextToken"] = strconv.Itoa(end)
	} else if in.MaxResults == nil && end > 1000 {
		end = 1000
	}
	urls := []string{}
	for _, n := range names[start:end] {
		urls = append(urls, s.URL+"/"+Account+"/"+n)
	}
	out["QueueUrls"] = urls
	return out, nil
}

// queueByURL finds a queue; s.mu must be held.
func (s *Server) queueByURL(u *string) (*queue, error) {
	if err := required("QueueUrl", u); err != nil {
		return nil, err
	}
	name, ok := strings.CutPrefix(*u, s.URL+"/"+Account+"/")
	if !ok {
		return nil, clientErr("InvalidAddress", "InvalidAddress", "queue URL %q is not of this server", *u)
	}
	q, ok := s.queues[name]
	if !ok {
		return nil, clientErr("QueueDoesNotExist", "AWS.SimpleQueueService.NonExistentQueue", "the queue %s does not exist", name)
	}
	return q, nil
}

func (s *Server) listQueueTags(r *http.Request, body []byte) (any, error) {
	var in struct{ QueueUrl *string }
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	q, err := s.queueByURL(in.QueueUrl)
	if err != nil {
		return nil, err
	}
	out := map[string]any{}
	if len(q.tags) > 0 {
		out["Tags"] = q.tags
	}
	return out, nil
}

func (s *Server) deleteQueue(r *http.Request, body []byte) (any, error) {
	var in struct{ QueueUrl *string }
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	q, err := s.queueByURL(in.QueueUrl)
	if err != nil {
		return nil, err
	}
	delete(s.queues, q.name)
	return map[string]any{}, nil
}

// validText reports whether v has only the characters SQS allows in a
// message body or attribute value.
func validText(v string) bool {
	if !isUTF8(v) {
		return false
	}
	for _, c := range v {
		if !(c == 0x9 || c == 0xA || c == 0xD || c >= 0x20 && c <= 0xD7FF || c >= 0xE000 && c <= 0xFFFD || c >= 0x10000 && c <= 0x10FFFF) {
			return false
		}
	}
	return true
}

func isUTF8(v string) bool { return strings.ToValidUTF8(v, "") == v }

var attrNameRE = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,256}$`)

func checkAttrs(attrs map[string]attrValue) error {
	if len(attrs) > 10 {
		return invalidParam("%d message attributes: at most 10", len(attrs))
	}
	for name, v := range attrs {
		low := strings.ToLower(name)
		if !attrNameRE.MatchString(name) || strings.HasPrefix(low, "aws.") || strings.HasPrefix(low, "amazon.") ||
			strings.HasPrefix(name, ".") || strings.HasSuffix(name, ".") || strings.Contains(name, "..") {
			return invalidParam("message attribute name %q is not allowed", name)
		}
		base, _, _ := strings.Cut(v.DataType, ".")
		switch base {
		case "String", "Number":
			if v.StringValue == nil || *v.StringValue == "" || v.BinaryValue != nil {
				return invalidParam("message attribute %s of type %s needs a non-empty StringValue only", name, v.DataType)
			}
			if !validText(*v.StringValue) {
				return invalidParam("message attribute %s has characters SQS does not allow", name)
			}
		case "Binary":
			if len(v.BinaryValue) == 0 || v.StringValue != nil {
				return invalidParam("message attribute %s of type Binary needs a non-empty BinaryValue only", name)
			}
		default:
			return invalidParam("message attribute %s: DataType %q", name, v.DataType)
		}
	}
	return nil
}

// md5OfAttrs is SQS's digest of message attributes.
func md5OfAttrs(attrs map[string]attrValue) string {
	if len(attrs) == 0 {
		return ""
	}
	names := slices.Sorted(func(yield func(string) bool) {
		for n := range attrs {
			if !yield(n) {
				return
			}
		}
	})
	h := md5.New()
	put := func(b []byte) {
		_ = binary.Write(h, binary.BigEndian, uint32(len(b)))
		h.Write(b)
	}
	for _, n := range names {
		v := attrs[n]
		put([]byte(n))
		put([]byte(v.DataType))
		if v.StringValue != nil {
			h.Write([]byte{1})
			put([]byte(*v.StringValue))
		} else {
			h.Write([]byte{2})
			put(v.BinaryValue)
		}
	}
	return hex.EncodeToString(h.Sum(nil))
}

func md5Hex(s string) string {
	sum := md5.Sum([]byte(s))
	return hex.EncodeToString(sum[:])
}

func newID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	h := hex.EncodeToString(b)
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// notify wakes long polls; s.mu must be held.
func (s *Server) notify() {
	close(s.changed)
	s.changed = make(chan struct{})
}

func (s *Server) sendMessage(r *http.Request, body []byte) (any, error) {
	var in struct {
		QueueUrl          *string
		MessageBody       *string
		DelaySeconds      *int
		MessageAttributes map[string]attrValue
	}
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	if err := required("MessageBody", in.MessageBody); err != nil {
		return nil, err
	}
	if !validText(*in.MessageBody) {
		return nil, invalidParam("message body has characters SQS does not allow")
	}
	if err := checkAttrs(in.MessageAttributes); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	q, err := s.queueByURL(in.QueueUrl)
	if err != nil {
		return nil, err
	}
	maxSize, _ := strconv.Atoi(q.attrs["MaximumMessageSize"])
	if len(*in.MessageBody) > maxSize {
		return nil, invalidParam("message of %d bytes is longer than the queue's MaximumMessageSize %d", len(*in.MessageBody), maxSize)
	}
	delay, _ := strconv.Atoi(q.attrs["DelaySeconds"])
	if in.DelaySeconds != nil {
		if *in.DelaySeconds < 0 || *in.DelaySeconds > 900 {
			return nil, invalidParam("DelaySeconds %d: want 0..900", *in.DelaySeconds)
		}
		delay = *in.DelaySeconds
	}
	now := s.now()
	m := &message{id: newID(), body: *in.MessageBody, md5Body: md5Hex(*in.MessageBody), attrs: in.MessageAttributes, md5Attrs: md5OfAttrs(in.MessageAttributes), sent: now, visibleAt: now.Add(time.Duration(delay) * time.Second)}
	q.msgs = append(q.msgs, m)
	s.notify()
	out := map[string]string{"MessageId": m.id, "MD5OfMessageBody": m.md5Body}
	if m.md5Attrs != "" {
		out["MD5OfMessageAttributes"] = m.md5Attrs
	}
	return out, nil
}

// expire drops messages past the retention period; s.mu must be held.
func (q *queue) expire(now time.Time) {
	ret, _ := strconv.Atoi(q.attrs["MessageRetentionPeriod"])
	q.msgs = slices.DeleteFunc(q.msgs, func(m *message) bool { return now.Sub(m.sent) >= time.Duration(ret)*time.Second })
}

var systemAttrs = []string{"ApproximateReceiveCount", "ApproximateFirstReceiveTimestamp", "SentTimestamp", "SenderId"}

func (s *Server) receiveMessage(r *http.Request, body []byte) (any, error) {
	var in struct {
		QueueUrl                    *string
		MaxNumberOfMessages         *int
		WaitTimeSeconds             *int
		VisibilityTimeout           *int
		AttributeNames              []string
		MessageSystemAttributeNames []string
		MessageAttributeNames       []string
		ReceiveRequestAttemptId     *string
	}
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	max := 1
	if in.MaxNumberOfMessages != nil {
		if max = *in.MaxNumberOfMessages; max < 1 || max > 10 {
			return nil, invalidParam("MaxNumberOfMessages %d: want 1..10", max)
		}
	}
	if in.ReceiveRequestAttemptId != nil {
		return nil, invalidParam("ReceiveRequestAttemptId is for FIFO queues only")
	}
	for _, n := range append(slices.Clone(in.AttributeNames), in.MessageSystemAttributeNames...) {
		if n != "All" && !slices.Contains(systemAttrs, n) {
			return nil, clientErr("InvalidAttributeName", "InvalidAttributeName", "unknown attribute name %s", n)
		}
	}
	s.mu.Lock()
	q, err := s.queueByURL(in.QueueUrl)
	if err != nil {
		s.mu.Unlock()
		return nil, err
	}
	wait, _ := strconv.Atoi(q.attrs["ReceiveMessageWaitTimeSeconds"])
	if in.WaitTimeSeconds != nil {
		if wait = *in.WaitTimeSeconds; wait < 0 || wait > 20 {
			s.mu.Unlock()
			return nil, invalidParam("WaitTimeSeconds %d: want 0..20", wait)
		}
	}
	vis, _ := strconv.Atoi(q.attrs["VisibilityTimeout"])
	if in.VisibilityTimeout != nil {
		if vis = *in.VisibilityTimeout; vis < 0 || vis > 43200 {
			s.mu.Unlock()
			return nil, invalidParam("VisibilityTimeout %d: want 0..43200", vis)
		}
	}
	s.mu.Unlock()
	deadline := s.now().Add(time.Duration(wait) * time.Second)
	for {
		s.mu.Lock()
		if s.queues[q.name] != q {
			s.mu.Unlock()
			return nil, clientErr("QueueDoesNotExist", "AWS.SimpleQueueService.NonExistentQueue", "the queue %s was deleted", q.name)
		}
		now := s.now()
		q.expire(now)
		var got []map[string]any
		var next time.Time // when the next message becomes visible
		for _, m := range q.msgs {
			if len(got) == max {
				break
			}
			if m.visibleAt.After(now) {
				if next.IsZero() || m.visibleAt.Before(next) {
					next = m.visibleAt
				}
				continue
			}
			if r.Context().Err() != nil {
				break // nobody would get it
			}
			m.receives++
			if m.firstRecv.IsZero() {
				m.firstRecv = now
			}
			m.handle = newID() + "#" + m.id
			m.visibleAt = now.Add(time.Duration(vis) * time.Second)
			got = append(got, m.out(in.AttributeNames, in.MessageSystemAttributeNames, in.MessageAttributeNames))
		}
		changed := s.changed
		s.mu.Unlock()
		if len(got) > 0 {
			return map[string]any{"Messages": got}, nil
		}
		left := deadline.Sub(s.now())
		if left <= 0 {
			return map[string]any{}, nil
		}
		if !next.IsZero() && next.Sub(now) < left {
			left = next.Sub(now)
		}
		t := time.NewTimer(left)
		select {
		case <-changed:
		case <-t.C:
		case <-r.Context().Done():
			t.Stop()
			return nil, nil
		case <-s.closed:
			t.Stop()
			return map[string]any{}, nil
		}
		t.Stop()
	}
}

// out renders m for ReceiveMessage; s.mu must be held.
func (m *message) out(attrNames, sysNames, msgAttrNames []string) map[string]any {
	sys := map[string]string{}
	want := func(n string) bool {
		return slices.Contains(attrNames, "All") || slices.Contains(sysNames, "All") || slices.Contains(attrNames, n) || slices.Contains(sysNames, n)
	}
	vals := map[string]string{
		"ApproximateReceiveCount":          strconv.Itoa(m.receives),
		"ApproximateFirstReceiveTimestamp": strconv.FormatInt(m.firstRecv.UnixMilli(), 10),
		"SentTimestamp":                    strconv.FormatInt(m.sent.UnixMilli(), 10),
		"SenderId":                         "AIDAFAKESQSSENDER",
	}
	for n, v := range vals {
		if want(n) {
			sys[n] = v
		}
	}
	o := map[string]any{"MessageId": m.id, "ReceiptHandle": m.handle, "Body": m.body, "MD5OfBody": m.md5Body}
	if len(sys) > 0 {
		o["Attributes"] = sys
	}
	attrs := map[string]attrValue{}
	for n, v := range m.attrs {
		for _, w := range msgAttrNames {
			p, wild := strings.CutSuffix(w, ".*")
			if w == "All" || w == ".*" || w == n || wild && strings.HasPrefix(n, p+".") {
				attrs[n] = v
				break
			}
		}
	}
	if len(attrs) > 0 {
		o["MessageAttributes"] = attrs
		o["MD5OfMessageAttributes"] = md5OfAttrs(attrs)
	}
	return o
}

// byHandle finds the message a receipt handle names; s.mu must be held.
func (q *queue) byHandle(h *string) (int, *message, error) {
	if err := required("ReceiptHandle", h); err != nil {
		return 0, nil, err
	}
	_, id, ok := strings.Cut(*h, "#")
	if !ok {
		return 0, nil, clientErr("ReceiptHandleIsInvalid", "ReceiptHandleIsInvalid", "receipt handle %q is not one this server gave", *h)
	}
	for i, m := range q.msgs {
		if m.id == id {
			return i, m, nil
		}
	}
	return -1, nil, nil // deleted or expired
}

func (s *Server) deleteMessage(r *http.Request, body []byte) (any, error) {
	var in struct{ QueueUrl, ReceiptHandle *string }
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	q, err := s.queueByURL(in.QueueUrl)
	if err != nil {
		return nil, err
	}
	i, m, err := q.byHandle(in.ReceiptHandle)
	if err != nil {
		return nil, err
	}
	// SQS: a handle of an earlier receive succeeds but may not delete.
	if m != nil && m.handle == *in.ReceiptHandle {
		q.msgs = slices.Delete(q.msgs, i, i+1)
	}
	return map[string]any{}, nil
}

func (s *Server) changeVisibility(r *http.Request, body []byte) (any, error) {
	var in struct {
		QueueUrl, ReceiptHandle *string
		VisibilityTimeout       *int
	}
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	if in.VisibilityTimeout == nil {
		return nil, clientErr("InvalidRequest", "InvalidRequest", "missing required field VisibilityTimeout")
	}
	if *in.VisibilityTimeout < 0 || *in.VisibilityTimeout > 43200 {
		return nil, invalidParam("VisibilityTimeout %d: want 0..43200", *in.VisibilityTimeout)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	q, err := s.queueByURL(in.QueueUrl)
	if err != nil {
		return nil, err
	}
	_, m, err := q.byHandle(in.ReceiptHandle)
	if err != nil {
		return nil, err
	}
	now := s.now()
	if m == nil || m.handle != *in.ReceiptHandle || !m.visibleAt.After(now) {
		return nil, clientErr("MessageNotInflight", "AWS.SimpleQueueService.MessageNotInflight", "the message is not in flight under this receipt handle")
	}
	m.visibleAt = now.Add(time.Duration(*in.VisibilityTimeout) * time.Second)
	s.notify()
	return map[string]any{}, nil
}

var queueAttrNames = []string{"ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible", "ApproximateNumberOfMessagesDelayed",
	"VisibilityTimeout", "MessageRetentionPeriod", "DelaySeconds", "MaximumMessageSize", "ReceiveMessageWaitTimeSeconds",
	"QueueArn", "CreatedTimestamp", "LastModifiedTimestamp"}

func (s *Server) getQueueAttributes(r *http.Request, body []byte) (any, error) {
	var in struct {
		QueueUrl       *string
		AttributeNames []string
	}
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	for _, n := range in.AttributeNames {
		if n != "All" && !slices.Contains(queueAttrNames, n) {
			return nil, clientErr("InvalidAttributeName", "InvalidAttributeName", "unknown attribute name %s", n)
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	q, err := s.queueByURL(in.QueueUrl)
	if err != nil {
		return nil, err
	}
	now := s.now()
	q.expire(now)
	var visible, inflight, delayed int
	for _, m := range q.msgs {
		switch {
		case !m.visibleAt.After(now):
			visible++
		case m.receives == 0:
			delayed++
		default:
			inflight++
		}
	}
	vals := map[string]string{
		"ApproximateNumberOfMessages":           strconv.Itoa(visible),
		"ApproximateNumberOfMessagesNotVisible": strconv.Itoa(inflight),
		"ApproximateNumberOfMessagesDelayed":    strconv.Itoa(delayed),
		"QueueArn":                              "arn:aws:sqs:" + Region + ":" + Account + ":" + q.name,
		"CreatedTimestamp":                      strconv.FormatInt(q.created.Unix(), 10),
		"LastModifiedTimestamp":                 strconv.FormatInt(q.created.Unix(), 10),
	}
	maps := map[string]string{}
	for _, n := range queueAttrNames {
		if !slices.Contains(in.AttributeNames, "All") && !slices.Contains(in.AttributeNames, n) {
			continue
		}
		if v, ok := vals[n]; ok {
			maps[n] = v
		} else {
			maps[n] = q.attrs[n]
		}
	}
	out := map[string]any{}
	if len(maps) > 0 {
		out["Attributes"] = maps
	}
	return out, nil
}
