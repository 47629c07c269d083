// Package sqsqueue is the Amazon SQS queue backend, for bus URLs
//
//	sqs://PREFIX?region=R&endpoint=URL[&poll_wait=20s&empty_polls=2]
//
// and for notification inboxes (OpenInbox) over a queue that S3, SNS or
// EventBridge fills. It implements queue/driver on aws-sdk-go-v2 and passes
// queue/drivertest's conformance suite against sqsfake, a local endpoint
// speaking the SQS JSON protocol that checks every request (the Go SQS
// emulators installable here, goaws v0.4.x, speak only the older query
// protocol the SDK no longer sends).
//
// # Layout
//
// A topic is a queue-name prefix. Each subscription is one standard queue,
// "<prefix>-<subscription>" (see QueueName for names with other characters
// than [A-Za-z0-9_-] or longer than 80 bytes), created by Subscribe with a
// visibility timeout of the ack wait and the longest retention SQS allows
// (14 days: older messages are dropped by SQS). Dead letters go to one more
// queue, "<prefix>_dead-letters", created by Open. Every queue is tagged
// sluice-prefix=<prefix> and sluice-role=subscription or dead-letters; the
// IAM principal needs sqs:CreateQueue, GetQueueUrl, ListQueues,
// ListQueueTags, TagQueue, SendMessage, ReceiveMessage, DeleteMessage,
// ChangeMessageVisibility and GetQueueAttributes.
//
// Publish sends the message to every subscription queue of the topic,
// including those other processes created: it lists the queues named
// "<prefix>-*" (ListQueues, cached for Options.ListEvery, refreshed after
// that), keeps those whose tags name this prefix (so the queues of a topic
// "<prefix>-x" are not mistaken for ours) and returns once every
// SendMessage succeeded. A publish that fails part-way may be retried: the
// queues that got it get it again, with the same ID, which at-least-once
// consumers tolerate. A topic without any subscription queue refuses to
// publish (the message would reach no one): open the subscriptions first,
// or name them in Options.Subscriptions.
//
// # What differs from a stream (NATS)
//
// A subscription queue holds only what was published after it was created,
// so a subscription opened for the first time does not see older messages
// (the suite runs with drivertest's SubscriptionsStartEmpty capability).
// Real SQS standard queues order messages on a best-effort basis only and
// may, rarely, deliver a message twice; sqsfake delivers in order.
//
// # Messages
//
// Message.ID is sluice's own ID, carried in the "Sluice-Id" message
// attribute, so it is the same in every subscription queue and across
// redeliveries (SQS's MessageId differs per queue). Headers travel as String
// message attributes when there are at most 8, each name is a valid
// attribute name not starting with "Sluice-" and each value non-empty;
// otherwise they all travel JSON-encoded in the "Sluice-Headers" attribute.
// A body that is not text SQS accepts (valid UTF-8 without most control
// characters) is sent base64-encoded with "Sluice-Body-Encoding: base64".
// Deliveries is SQS's ApproximateReceiveCount.
//
// Ack deletes the message. Nack(delay) sets its visibility timeout to the
// delay, rounded up to whole seconds, so it comes back then; a message no
// longer in flight (its visibility ran out) needs no nack. InProgress sets
// the visibility timeout to the ack wait again. SQS counts visibility in
// whole seconds, so an ack wait is rounded up to one (800ms waits 1s), and
// caps it at 12 hours from the receive. DeadLetter sends a JSON envelope
// (subscription, ID, body, headers, reason, deliveries, time) to the
// dead-letter queue and only then deletes the message; DeadLetters reads
// that queue by receiving every message with a hold of a minute and
// releasing them again, so two listings at once each see part of it, and a
// dead letter stored twice (a retry after a failed delete) is listed once.
//
// Receive long-polls (WaitTimeSeconds = Options.PollWait, up to 20 s) for
// one message at a time, so competing subscriptions share the queue. The
// poll runs on the subscription's own context: when the caller's ctx ends
// first, Receive returns ctx.Err() and the poll goes on, and the message it
// brings goes to the next Receive (or back to the queue at Close, or if it
// waited longer than its visibility timeout), so no delivery is wasted.
//
// # Pending and --once
//
// SQS's counts (ApproximateNumberOfMessages, ...NotVisible, ...Delayed) are
// approximate and may lag behind sends for up to about a minute. Pending
// therefore combines three things: the sum of those counts; the number of
// messages this subscription received and has not yet acked, nacked or
// dead-lettered (never less than that); and, with Options.EmptyPolls = N > 0
// (the default, 2), it reports 0 only after this subscription's last N long
// polls came back empty since its last received message and since the last
// publish of this process — otherwise at least 1. A `sluice run --once`
// therefore stops only once its consumers found the queue empty N times in a
// row and SQS counts nothing in flight or delayed; after the last message
// that takes N poll waits. sqsfake's counts are exact, so tests against it
// may set EmptyPolls < 0 to trust them alone.
//
// No call needs a deadline on ctx: the SDK client has its own timeouts, and
// every request but the long poll is bounded by opTimeout when ctx has no
// deadline. Topic and subscriptions are safe for concurrent use.
package sqsqueue

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/google/uuid"

	"github.com/sluicehq/sluice/fault"
	"github.com/sluicehq/sluice/internal/awsconf"
	"github.com/sluicehq/sluice/queue"
	"github.com/sluicehq/sluice/queue/driver"
)

// Message attributes sluice sets.
const (
	AttrID           = "Sluice-Id"
	AttrHeaders      = "Sluice-Headers"
	AttrBodyEncoding = "Sluice-Body-Encoding"
)

// Queue tags.
const (
	TagPrefix = "sluice-prefix"
	TagRole   = "sluice-role"
)

// DeadLetterSuffix names a topic's dead-letter queue: "<prefix>_dead-letters".
const DeadLetterSuffix = "_dead-letters"

const (
	maxNameLen   = 80
	opTimeout    = 30 * time.Second
	listHold     = 60 * time.Second
	retention    = "1209600" // 14 days, SQS's maximum
	maxVisSecs   = 43200     // 12 hours
	defaultPoll  = 20 * time.Second
	defaultList  = 10 * time.Second
	defaultEmpty = 2
)

var (
	_ driver.Topic        = (*Topic)(nil)
	_ driver.Subscription = (*subscription)(nil)
)

// Options configure Open. The zero value means defaults.
type Options struct {
	// Prefix is the topic's queue-name prefix when the URL names none
	// (sqs://?region=..); the engine passes "sluice-<pipeline>".
	Prefix string
	// Logger receives debug and warning logs (nil: slog.Default()).
	Logger *slog.Logger
	// Client, if set, is used instead of one built from the URL's region
	// and endpoint and the default AWS credential chain.
	Client *sqs.Client
	// Subscriptions are created by Open, so messages published before
	// their consumers first start are kept for them.
	Subscriptions []string
	// PollWait is the longest long poll, whole seconds from 1 to 20
	// (default 20s; the URL's poll_wait overrides it).
	PollWait time.Duration
	// EmptyPolls is how many empty long polls in a row a subscription
	// needs before Pending may report 0 (see the package doc). 0 means 2
	// (the URL's empty_polls overrides it); negative trusts SQS's
	// approximate counts alone, which only a fake makes exact.
	EmptyPolls int
	// ListEvery is how long Publish reuses its list of subscription
	// queues (default 10s; negative: list before every publish).
	ListEvery time.Duration
	// Now is the clock (nil: time.Now).
	Now func() time.Time
}

// Topic is an SQS-backed topic.
type Topic struct {
	client   *sqs.Client
	prefix   string
	dlq      *deadLetterQueue
	log      *slog.Logger
	now      func() time.Time
	poll     int32
	empty    int
	listFor  time.Duration
	listedAt time.Time

	mu     sync.Mutex
	closed bool
	queues map[string]bool // subscription queue URL -> known ours
	subs   []*subscription
	vetted map[string]bool // queue URL -> tags checked: ours or not
}

// params are the parts of an sqs:// URL.
type params struct {
	name, region, endpoint string
	pollWait               time.Duration
	pollSet                bool
	emptyPolls             int
	ackWait                time.Duration
}

// Query parameters the engine reads itself; the driver accepts and ignores
// them except ack_wait for inboxes.
var engineParams = []string{"ack_wait", "max_deliveries"}

func parseURL(raw string) (params, error) {
	var p params
	u, err := url.Parse(raw)
	if err != nil {
		return p, fault.Permanent(fmt.Errorf("sqsqueue: URL %q does not parse; write sqs://NAME?region=R[&endpoint=URL]", raw))
	}
	if u.Scheme != "sqs" {
		return p, fault.Permanent(fmt.Errorf("sqsqueue: URL %q: scheme %q, want sqs://NAME?region=R", u.Redacted(), u.Scheme))
	}
	if u.User != nil || u.Path != "" && u.Path != "/" {
		return p, fault.Permanent(fmt.Errorf("sqsqueue: URL %q: write sqs://NAME?region=R (no user or path)", u.Redacted()))
	}
	p.name = u.Host
	for k, vs := range u.Query() {
		v := vs[0]
		switch k {
		case "region":
			p.region = v
		case "endpoint":
			if e, err := url.Parse(v); err != nil || e.Scheme == "" || e.Host == "" {
				return p, fault.Permanent(fmt.Errorf("sqsqueue: URL %q: endpoint=%q: want an absolute URL such as http://127.0.0.1:9324", u.Redacted(), v))
			}
			p.endpoint = v
		case "poll_wait":
			d, err := time.ParseDuration(v)
			if err != nil || d < 0 || d > 20*time.Second {
				return p, fault.Permanent(fmt.Errorf("sqsqueue: URL %q: poll_wait=%q: want a duration from 0s to 20s", u.Redacted(), v))
			}
			p.pollWait, p.pollSet = d, true
		case "empty_polls":
			n, err := strconv.Atoi(v)
			if err != nil {
				return p, fault.Permanent(fmt.Errorf("sqsqueue: URL %q: empty_polls=%q: want a whole number (negative: trust SQS's counts)", u.Redacted(), v))
			}
			p.emptyPolls = n
		case "ack_wait":
			d, err := time.ParseDuration(v)
			if err != nil || d <= 0 {
				return p, fault.Permanent(fmt.Errorf("sqsqueue: URL %q: ack_wait=%q: want a duration such as 30s", u.Redacted(), v))
			}
			p.ackWait = d
		default:
			if !slices.Contains(engineParams, k) {
				return p, fault.Permanent(fmt.Errorf("sqsqueue: URL %q: unknown parameter %q; known: region, endpoint, poll_wait, empty_polls, ack_wait, max_deliveries", u.Redacted(), k))
			}
		}
	}
	return p, nil
}

// newClient builds a client for p with the default AWS credential chain
// (environment, shared files, instance roles).
// resolve applies the URL's poll settings and the defaults to o, and
// returns o.Client or a client built from the URL (Open and OpenInbox).
func (o *Options) resolve(ctx context.Context, p params) (*sqs.Client, error) {
	if p.pollSet {
		o.PollWait = p.pollWait
	} else if o.PollWait == 0 {
		o.PollWait = defaultPoll
	}
	if p.emptyPolls != 0 {
		o.EmptyPolls = p.emptyPolls
	}
	if o.EmptyPolls == 0 {
		o.EmptyPolls = defaultEmpty
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Client != nil {
		return o.Client, nil
	}
	return newClient(ctx, p)
}

func newClient(ctx context.Context, p params) (*sqs.Client, error) {
	cfg, err := awsconf.Load(ctx, p.region, "sqsqueue", "add ?region=R to the sqs:// URL")
	if err != nil {
		return nil, err
	}
	return sqs.NewFromConfig(cfg, func(o *sqs.Options) { o.BaseEndpoint = awsconf.Endpoint(p.endpoint) }), nil
}

// Open opens the topic sqs://PREFIX?region=R&endpoint=URL: it creates the
// dead-letter queue and the queues of opts.Subscriptions. The URL's PREFIX
// wins over opts.Prefix.
func Open(ctx context.Context, sqsURL string, opts *Options) (*Topic, error) {
	var o Options
	if opts != nil {
		o = *opts
	}
	p, err := parseURL(sqsURL)
	if err != nil {
		return nil, err
	}
	prefix := p.name
	if prefix == "" {
		prefix = o.Prefix
	}
	if err := checkPrefix(prefix); err != nil {
		return nil, fault.Permanent(fmt.Errorf("sqsqueue: open %s: prefix %q: %w", sqsURL, prefix, err))
	}
	if o.ListEvery == 0 {
		o.ListEvery = defaultList
	}
	client, err := o.resolve(ctx, p)
	if err != nil {
		return nil, err
	}
	t := &Topic{
		client: client, prefix: prefix, log: o.Logger.With("queue", "sqs://"+prefix), now: o.Now,
		poll: int32(min(max(o.PollWait, 0), defaultPoll) / time.Second), empty: o.EmptyPolls, listFor: o.ListEvery,
		queues: map[string]bool{}, vetted: map[string]bool{},
	}
	dlqURL, err := t.ensureQueue(ctx, prefix+DeadLetterSuffix, "dead-letters", 30*time.Second)
	if err != nil {
		return nil, err
	}
	t.dlq = &deadLetterQueue{client: client, url: dlqURL, name: prefix + DeadLetterSuffix, now: o.Now}
	for _, name := range o.Subscriptions {
		if _, err := t.subscriptionQueue(ctx, name, queue.DefaultAckWait); err != nil {
			return nil, err
		}
	}
	return t, nil
}

func checkPrefix(p string) error {
	switch {
	case p == "":
		return errors.New("empty; write sqs://PREFIX or set Options.Prefix")
	case !nameRE.MatchString(p):
		return errors.New("only letters, digits, '-' and '_' are allowed in SQS queue names")
	case len(p) > maxNameLen-len(DeadLetterSuffix)-12:
		return fmt.Errorf("longer than %d bytes: queue names of its subscriptions would not fit SQS's 80", maxNameLen-len(DeadLetterSuffix)-12)
	}
	return nil
}

var nameRE = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)

// QueueName is the SQS queue of subscription sub under prefix:
// "<prefix>-<sub>" when sub has only [A-Za-z0-9_-] and the whole fits
// SQS's 80 bytes; otherwise every other byte of sub becomes '_', the name is
// cut to leave room, and "-" plus 10 hex digits of the SHA-256 of sub are
// appended, so distinct subscriptions get distinct queues.
func QueueName(prefix, sub string) string {
	name := prefix + "-" + sub
	if nameRE.MatchString(sub) && len(name) <= maxNameLen {
		return name
	}
	b := []byte(sub)
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			b[i] = '_'
		}
	}
	sum := sha256.Sum256([]byte(sub))
	suffix := "-" + hex.EncodeToString(sum[:5])
	room := maxNameLen - len(prefix) - 1 - len(suffix)
	if len(b) > room {
		b = b[:room]
	}
	return prefix + "-" + string(b) + suffix
}

// bounded gives ctx a deadline of opTimeout when it has none.
func bounded(ctx context.Context) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return ctx, func() {}
	}
	return context.WithTimeout(ctx, opTimeout)
}

func visSecs(d time.Duration) int32 {
	s := (d + time.Second - 1) / time.Second
	return int32(min(max(s, 0), maxVisSecs))
}

// ensureQueue creates (or finds) the queue name tagged with role and checks
// that an existing one belongs to this topic.
func (t *Topic) ensureQueue(ctx context.Context, name, role string, vis time.Duration) (string, error) {
	ctx, cancel := bounded(ctx)
	defer cancel()
	out, err := t.client.CreateQueue(ctx, &sqs.CreateQueueInput{
		QueueName: aws.String(name),
		Attributes: map[string]string{
			string(types.QueueAttributeNameVisibilityTimeout):      strconv.Itoa(int(visSecs(vis))),
			string(types.QueueAttributeNameMessageRetentionPeriod): retention,
		},
		Tags: map[string]string{TagPrefix: t.prefix, TagRole: role},
	})
	var exists *types.QueueNameExists
	switch {
	case errors.As(err, &exists):
		// It exists with another visibility timeout: ReceiveMessage sets
		// the visibility per receive, so the queue's own does not matter.
		got, gerr := t.client.GetQueueUrl(ctx, &sqs.GetQueueUrlInput{QueueName: aws.String(name)})
		if gerr != nil {
			return "", classify(fmt.Errorf("sqsqueue: find existing queue %s: %w", name, gerr))
		}
		out = &sqs.CreateQueueOutput{QueueUrl: got.QueueUrl}
	case err != nil:
		return "", classify(fmt.Errorf("sqsqueue: create queue %s: %w", name, err))
	}
	u := aws.ToString(out.QueueUrl)
	tags, err := t.client.ListQueueTags(ctx, &sqs.ListQueueTagsInput{QueueUrl: out.QueueUrl})
	if err != nil {
		return "", classify(fmt.Errorf("sqsqueue: read tags of queue %s: %w", name, err))
	}
	if tags.Tags[TagPrefix] != t.prefix || tags.Tags[TagRole] != role {
		return "", fault.Permanent(fmt.Errorf("sqsqueue: queue %s exists but is not the %s queue of topic %s (tags %s=%q %s=%q); pick another prefix or delete the queue",
			name, role, t.prefix, TagPrefix, tags.Tags[TagPrefix], TagRole, tags.Tags[TagRole]))
	}
	return u, nil
}

// classify marks SDK errors that retrying cannot fix as permanent.
func classify(err error) error {
	var (
		dne  *types.QueueDoesNotExist
		inv  *types.InvalidAttributeName
		invv *types.InvalidAttributeValue
		sec  *types.InvalidSecurity
	)
	if errors.As(err, &dne) || errors.As(err, &inv) || errors.As(err, &invv) || errors.As(err, &sec) {
		return fault.Permanent(err)
	}
	return err
}

func (t *Topic) check(op string) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return fmt.Errorf("sqsqueue: %s on topic %s: %w", op, t.prefix, queue.ErrClosed)
	}
	return nil
}

func (t *Topic) subscriptionQueue(ctx context.Context, name string, ackWait time.Duration) (string, error) {
	u, err := t.ensureQueue(ctx, QueueName(t.prefix, name), "subscription", ackWait)
	if err != nil {
		return "", err
	}
	t.mu.Lock()
	t.queues[u], t.vetted[u] = true, true
	t.mu.Unlock()
	return u, nil
}

// targets lists the topic's subscription queues, from the cache while it
// is fresh.
func (t *Topic) targets(ctx context.Context) ([]string, error) {
	t.mu.Lock()
	fresh := !t.listedAt.IsZero() && t.listFor > 0 && t.now().Sub(t.listedAt) < t.listFor
	t.mu.Unlock()
	if !fresh {
		if err := t.refresh(ctx); err != nil {
			return nil, err
		}
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	var out []string
	for u, ok := range t.queues {
		if ok {
			out = append(out, u)
		}
	}
	sort.Strings(out)
	return out, nil
}

// refresh lists the queues named "<prefix>-*" and keeps those tagged as
// this topic's subscriptions.
func (t *Topic) refresh(ctx context.Context) error {
	ctx, cancel := bounded(ctx)
	defer cancel()
	start := t.now()
	var urls []string
	p := sqs.NewListQueuesPaginator(t.client, &sqs.ListQueuesInput{QueueNamePrefix: aws.String(t.prefix + "-"), MaxResults: aws.Int32(1000)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return classify(fmt.Errorf("sqsqueue: list the subscription queues of topic %s: %w", t.prefix, err))
		}
		urls = append(urls, page.QueueUrls...)
	}
	found := map[string]bool{}
	for _, u := range urls {
		t.mu.Lock()
		ours, seen := t.vetted[u]
		t.mu.Unlock()
		if !seen {
			tags, err := t.client.ListQueueTags(ctx, &sqs.ListQueueTagsInput{QueueUrl: aws.String(u)})
			var dne *types.QueueDoesNotExist
			if errors.As(err, &dne) {
				continue
			}
			if err != nil {
				return classify(fmt.Errorf("sqsqueue: read tags of queue %s: %w", u, err))
			}
			ours = tags.Tags[TagPrefix] == t.prefix && tags.Tags[TagRole] == "subscription"
			t.mu.Lock()
			t.vetted[u] = ours
			t.mu.Unlock()
		}
		found[u] = ours
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	// Queues this process subscribed stay even if the list lags.
	for u, ok := range t.queues {
		if ok && !found[u] {
			found[u] = true
		}
	}
	t.queues, t.listedAt = found, start
	return nil
}

// encode turns a body and headers into SQS message body and attributes.
func encode(id string, body []byte, header map[string]string) (string, map[string]types.MessageAttributeValue, error) {
	attrs := map[string]types.MessageAttributeValue{AttrID: strAttr(id)}
	text := string(body)
	if !sqsText(text) {
		text = base64.StdEncoding.EncodeToString(body)
		attrs[AttrBodyEncoding] = strAttr("base64")
	}
	plain := len(header) <= 8
	for k, v := range header {
		if !plain {
			break
		}
		plain = attrName(k) && v != "" && sqsText(v)
	}
	if plain {
		for k, v := range header {
			attrs[k] = strAttr(v)
		}
	} else {
		js, err := json.Marshal(header)
		if err != nil {
			return "", nil, err
		}
		attrs[AttrHeaders] = strAttr(string(js))
	}
	return text, attrs, nil
}

func strAttr(v string) types.MessageAttributeValue {
	return types.MessageAttributeValue{DataType: aws.String("String"), StringValue: aws.String(v)}
}

var attrRE = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,256}$`)

func attrName(k string) bool {
	low := strings.ToLower(k)
	return attrRE.MatchString(k) && !strings.HasPrefix(low, "sluice-") && !strings.HasPrefix(low, "aws.") && !strings.HasPrefix(low, "amazon.") &&
		!strings.HasPrefix(k, ".") && !strings.HasSuffix(k, ".") && !strings.Contains(k, "..")
}

// sqsText reports whether SQS accepts s as a message body or attribute
// value: valid UTF-8 of the XML character ranges.
func sqsText(s string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	for _, c := range s {
		if !(c == 0x9 || c == 0xA || c == 0xD || c >= 0x20 && c <= 0xD7FF || c >= 0xE000 && c <= 0xFFFD || c >= 0x10000) {
			return false
		}
	}
	return true
}

// decode turns a received SQS message back into a driver message. Foreign
// messages (no Sluice-Id) get SQS's MessageId and keep their raw body.
func decode(m types.Message) (*driver.Message, error) {
	dm := &driver.Message{ID: aws.ToString(m.MessageId), Body: []byte(aws.ToString(m.Body)), Deliveries: 1}
	if n, err := strconv.Atoi(m.Attributes[string(types.MessageSystemAttributeNameApproximateReceiveCount)]); err == nil && n > 0 {
		dm.Deliveries = n
	}
	for k, v := range m.MessageAttributes {
		s := aws.ToString(v.StringValue)
		switch k {
		case AttrID:
			dm.ID = s
		case AttrBodyEncoding:
			if s != "base64" {
				return nil, fmt.Errorf("message %s: unknown %s %q", aws.ToString(m.MessageId), AttrBodyEncoding, s)
			}
			b, err := base64.StdEncoding.DecodeString(aws.ToString(m.Body))
			if err != nil {
				return nil, fmt.Errorf("message %s: body marked base64 does not decode: %w", aws.ToString(m.MessageId), err)
			}
			dm.Body = b
		case AttrHeaders:
			var h map[string]string
			if err := json.Unmarshal([]byte(s), &h); err != nil {
				return nil, fmt.Errorf("message %s: %s does not decode: %w", aws.ToString(m.MessageId), AttrHeaders, err)
			}
			for hk, hv := range h {
				if dm.Header == nil {
					dm.Header = map[string]string{}
				}
				dm.Header[hk] = hv
			}
		default:
			if v.StringValue == nil {
				s = string(v.BinaryValue)
			}
			if dm.Header == nil {
				dm.Header = map[string]string{}
			}
			dm.Header[k] = s
		}
	}
	return dm, nil
}

// Publish sends body to every subscription queue of the topic and returns
// once each SendMessage succeeded.
func (t *Topic) Publish(ctx context.Context, body []byte, header map[string]string) error {
	if err := t.check("publish"); err != nil {
		return err
	}
	ctx, cancel := bounded(ctx)
	defer cancel()
	id := uuid.NewString()
	text, attrs, err := encode(id, body, header)
	if err != nil {
		return fmt.Errorf("sqsqueue: publish to topic %s: encode headers: %w", t.prefix, err)
	}
	urls, err := t.targets(ctx)
	if err != nil {
		return err
	}
	if len(urls) == 0 {
		return fmt.Errorf("sqsqueue: publish to topic %s: no subscription queue %s-* exists, so the message would reach no one; start the consumers once (sluice run) so they create their queues, then publish again", t.prefix, t.prefix)
	}
	t.resetEmpty()
	errs := make([]error, len(urls))
	var wg sync.WaitGroup
	for i, u := range urls {
		wg.Go(func() {
			_, err := t.client.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: aws.String(u), MessageBody: aws.String(text), MessageAttributes: attrs})
			var dne *types.QueueDoesNotExist
			if errors.As(err, &dne) {
				// Deleted since listed: that subscription is gone.
				t.mu.Lock()
				delete(t.queues, u)
				t.mu.Unlock()
				return
			}
			if err != nil {
				errs[i] = fmt.Errorf("send message %s to queue %s: %w", id, u, err)
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return classify(fmt.Errorf("sqsqueue: publish to topic %s: %w (queues that got it may get it again on retry)", t.prefix, err))
	}
	return nil
}

func (t *Topic) resetEmpty() {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, s := range t.subs {
		s.mu.Lock()
		s.emptyPolls = 0
		s.mu.Unlock()
	}
}

// Subscribe creates the subscription's queue if needed and returns a
// subscription receiving from it.
func (t *Topic) Subscribe(ctx context.Context, name string, opts driver.SubscriptionOptions) (driver.Subscription, error) {
	if err := t.check("subscribe"); err != nil {
		return nil, err
	}
	ackWait := opts.AckWait
	if ackWait <= 0 {
		ackWait = queue.DefaultAckWait
	}
	u, err := t.subscriptionQueue(ctx, name, ackWait)
	if err != nil {
		return nil, err
	}
	s := newSubscription(t.client, name, QueueName(t.prefix, name), u, ackWait, t.poll, t.empty, t.dlq, t.log, t.now)
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		_ = s.Close()
		return nil, fmt.Errorf("sqsqueue: subscribe %q on topic %s: %w", name, t.prefix, queue.ErrClosed)
	}
	t.subs = append(t.subs, s)
	return s, nil
}

// DeadLetters lists the topic's dead letters, oldest first.
func (t *Topic) DeadLetters(ctx context.Context) ([]driver.DeadLetter, error) {
	if err := t.check("list dead letters"); err != nil {
		return nil, err
	}
	return t.dlq.list(ctx)
}

// Close stops every subscription opened on t.
func (t *Topic) Close() error {
	t.mu.Lock()
	subs := t.subs
	t.subs, t.closed = nil, true
	t.mu.Unlock()
	for _, s := range subs {
		_ = s.Close()
	}
	return nil
}
