package event

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"
	"unicode/utf8"
)

// ParseNotification reads the body of a message from a foreign queue (an
// SQS queue, a NATS subject, a RabbitMQ queue that an S3 server or AWS
// publishes to) in every dialect a user meets:
//
//   - S3 event records, as AWS S3 sends them straight to SQS and as MinIO
//     and versitygw send them: {"Records":[...]}, event names with or
//     without "s3:", quoted ETags, extra fields (MinIO's top-level
//     "EventName" and "Key", its contentType and userMetadata) ignored. A
//     single record outside a Records array is accepted as Parse does.
//     Keys are decoded per enc: the AWS documentation of the event message
//     structure says the key "is URL encoded" ("red flower.jpg" becomes
//     "red+flower.jpg"; MinIO also writes "/" as %2F, which decodes the
//     same), versitygw sends raw keys.
//   - The same inside an SNS envelope ({"Type":"Notification",
//     "Message":"<the records as a JSON string>", "TopicArn":...}), the
//     form an SQS queue subscribed to an SNS topic receives. With SNS raw
//     message delivery the queue receives the records alone, which is the
//     first case.
//   - The s3:TestEvent AWS sends when a notification configuration is
//     saved ({"Service":"Amazon S3","Event":"s3:TestEvent",...}), directly
//     or inside an SNS envelope: kind NotificationTest, no records, no error.
//   - Amazon EventBridge events from S3 ("source":"aws.s3") of detail-type
//     "Object Created" (event name ObjectCreated:Put, :Post, :Copy or
//     :CompleteMultipartUpload from detail.reason) and "Object Deleted"
//     (ObjectRemoved:Delete, or ObjectRemoved:DeleteMarkerCreated from
//     detail.deletion-type), as an EventBridge rule delivers them to an SQS
//     queue. Their keys are taken as they are, whatever enc says: the AWS
//     documentation of the EventBridge event message structure, unlike that
//     of the S3 event records, does not say the key is URL-encoded, and its
//     examples show plain keys.
//
// Records come out normalised as Parse leaves them: keys decoded, event
// names without "s3:", ETags unquoted. Anything else, including other
// EventBridge detail-types and SNS messages that are not notifications
// (a SubscriptionConfirmation), is an error that wraps ErrNotANotification,
// which package fault classifies as permanent: the same bytes can never
// parse, so the message belongs in the dead letters. The error quotes the
// first 200 bytes received and says which dialects were expected.
func ParseNotification(body []byte, enc KeyEncoding) ([]Record, NotificationKind, error) {
	return parseNotification(body, enc, false)
}

// NotificationKind says what a notification carried.
type NotificationKind int

// Kinds of notification.
const (
	// NotificationRecords carries object events (at least one record).
	NotificationRecords NotificationKind = iota + 1
	// NotificationTest is the s3:TestEvent AWS sends when notifications
	// are configured; it carries no records.
	NotificationTest
)

// String returns "records" or "test".
func (k NotificationKind) String() string {
	switch k {
	case NotificationRecords:
		return "records"
	case NotificationTest:
		return "test"
	}
	return fmt.Sprintf("NotificationKind(%d)", int(k))
}

// ErrNotANotification is wrapped by every error of ParseNotification: the
// body is not a notification sluice can read. Package fault classifies it
// as permanent.
var ErrNotANotification = errors.New("not an S3 event notification")

// expectedDialects ends every ParseNotification error.
const expectedDialects = `expected S3 event records ({"Records":[...]}, as AWS S3, MinIO and versitygw send them), ` +
	`the same in an SNS envelope ({"Type":"Notification","Message":"..."}), ` +
	`an s3:TestEvent, or an Amazon EventBridge "Object Created"/"Object Deleted" event from aws.s3`

// notificationError builds the error for body: what was wrong, what was
// received, what was expected.
func notificationError(body []byte, format string, args ...any) error {
	return fmt.Errorf("event: %w: %s; received %s; %s", ErrNotANotification, fmt.Sprintf(format, args...), quoteStart(body, 200), expectedDialects)
}

// quoteStart quotes at most n bytes of b (cut at a rune boundary), saying
// how long b was when it was cut.
func quoteStart(b []byte, n int) string {
	if len(b) <= n {
		return fmt.Sprintf("%q", b)
	}
	cut := n
	for cut > 0 && !utf8.RuneStart(b[cut]) {
		cut--
	}
	return fmt.Sprintf("%q... (%d bytes)", b[:cut], len(b))
}

// envelope holds the top-level fields of every dialect; json.RawMessage
// keeps the parts parsed later.
type envelope struct {
	// S3 records (AWS, MinIO, versitygw).
	Records json.RawMessage `json:"Records"`
	// A single record.
	EventName string          `json:"eventName"`
	S3        json.RawMessage `json:"s3"`
	// SNS.
	Type    string  `json:"Type"`
	Message *string `json:"Message"`
	// The s3:TestEvent.
	Service string `json:"Service"`
	Event   string `json:"Event"`
	// EventBridge.
	DetailType string          `json:"detail-type"`
	Source     string          `json:"source"`
	Detail     json.RawMessage `json:"detail"`
	Time       string          `json:"time"`
	Region     string          `json:"region"`
}

func parseNotification(body []byte, enc KeyEncoding, inSNS bool) ([]Record, NotificationKind, error) {
	trimmed := bytes.TrimSpace(body)
	if len(trimmed) == 0 {
		return nil, 0, notificationError(body, "the message is empty")
	}
	if trimmed[0] != '{' {
		return nil, 0, notificationError(body, "the message is not a JSON object")
	}
	var env envelope
	if err := json.Unmarshal(trimmed, &env); err != nil {
		return nil, 0, notificationError(body, "the message is not valid JSON (%v)", err)
	}
	switch {
	case env.Type != "" && env.Message != nil:
		if inSNS {
			return nil, 0, notificationError(body, "an SNS envelope inside an SNS envelope")
		}
		if env.Type != "Notification" {
			return nil, 0, notificationError(body, "an SNS message of type %q, not a Notification (an SQS queue subscribed to an SNS topic in another account receives a SubscriptionConfirmation: confirm it with its SubscribeURL)", env.Type)
		}
		recs, kind, err := parseNotification([]byte(*env.Message), enc, true)
		if err != nil {
			return nil, 0, fmt.Errorf("event: SNS notification's Message: %w", err)
		}
		return recs, kind, nil
	case env.Event == "s3:TestEvent":
		return nil, NotificationTest, nil
	case env.Records != nil && !bytes.Equal(env.Records, []byte("null")):
		var raw []looseRecord
		if err := json.Unmarshal(env.Records, &raw); err != nil {
			return nil, 0, notificationError(body, "its Records are not S3 event records (%v)", err)
		}
		recs := records(raw)
		if len(recs) == 0 {
			// A notification of nothing: acknowledged, not an error.
			return nil, NotificationRecords, nil
		}
		if err := normalise(recs, enc, body); err != nil {
			return nil, 0, err
		}
		return recs, NotificationRecords, nil
	case env.Source == "aws.s3" && env.Detail != nil:
		rec, err := fromEventBridge(env, body)
		if err != nil {
			return nil, 0, err
		}
		return []Record{rec}, NotificationRecords, nil
	case env.EventName != "" && env.S3 != nil:
		var r looseRecord
		if err := json.Unmarshal(trimmed, &r); err != nil {
			return nil, 0, notificationError(body, "a single record that does not decode (%v)", err)
		}
		recs := records([]looseRecord{r})
		if err := normalise(recs, enc, body); err != nil {
			return nil, 0, err
		}
		return recs, NotificationRecords, nil
	}
	return nil, 0, notificationError(body, "a JSON object of none of the known shapes")
}

// looseRecord reads a record whose eventTime may be in any of the forms
// servers write (RFC 3339, without a zone, or empty, as some MinIO
// versions and test tools send): the outer EventTime, being shallower,
// takes the JSON field from Record's.
type looseRecord struct {
	Record
	EventTime string `json:"eventTime"`
}

// eventTimeLayouts are tried in order; a time none of them reads is left
// zero rather than failing the record, as sluice never orders by it.
var eventTimeLayouts = []string{time.RFC3339Nano, "2006-01-02T15:04:05.999999999", "2006-01-02T15:04:05.999999999Z0700"}

func records(raw []looseRecord) []Record {
	out := make([]Record, len(raw))
	for i, lr := range raw {
		out[i] = lr.Record
		out[i].EventTime = time.Time{}
		for _, layout := range eventTimeLayouts {
			if t, err := time.Parse(layout, lr.EventTime); err == nil {
				out[i].EventTime = t.UTC()
				break
			}
		}
	}
	return out
}

// normalise decodes keys per enc and normalises names and ETags, as Parse.
func normalise(recs []Record, enc KeyEncoding, body []byte) error {
	for i := range recs {
		r := &recs[i]
		r.EventName = NormalizeName(r.EventName)
		r.S3.Object.ETag = NormalizeETag(r.S3.Object.ETag)
		if r.S3.Object.Key == "" {
			return notificationError(body, "record %d has no s3.object.key", i)
		}
		if enc != KeyRaw {
			k, err := url.QueryUnescape(r.S3.Object.Key)
			if err != nil {
				return notificationError(body, "record %d: key %q is not URL-encoded (set the key encoding to \"raw\" for servers that send raw keys, such as versitygw): %v", i, r.S3.Object.Key, err)
			}
			if k == "" {
				return notificationError(body, "record %d: key %q decodes to an empty key", i, r.S3.Object.Key)
			}
			r.S3.Object.Key = k
		}
	}
	return nil
}

// bridgeDetail is the detail of an S3 event on EventBridge.
type bridgeDetail struct {
	Bucket struct {
		Name string `json:"name"`
	} `json:"bucket"`
	Object struct {
		Key       string `json:"key"`
		Size      int64  `json:"size"`
		ETag      string `json:"etag"`
		VersionID string `json:"version-id"`
		Sequencer string `json:"sequencer"`
	} `json:"object"`
	Reason       string `json:"reason"`
	DeletionType string `json:"deletion-type"`
}

// createdReasons maps detail.reason of "Object Created" to event names.
var createdReasons = map[string]string{
	"PutObject":               ObjectCreatedPut,
	"POST Object":             ObjectCreatedPost,
	"CopyObject":              ObjectCreatedCopy,
	"CompleteMultipartUpload": ObjectCreatedCompleteMultipartUpload,
}

// Event names of removals, which sluice passes on but never matches by
// default.
const (
	objectRemovedDelete              = "ObjectRemoved:Delete"
	objectRemovedDeleteMarkerCreated = "ObjectRemoved:DeleteMarkerCreated"
)

func fromEventBridge(env envelope, body []byte) (Record, error) {
	var d bridgeDetail
	if err := json.Unmarshal(env.Detail, &d); err != nil {
		return Record{}, notificationError(body, "an EventBridge event from aws.s3 whose detail does not decode (%v)", err)
	}
	var name string
	switch env.DetailType {
	case "Object Created":
		name = createdReasons[d.Reason]
		if name == "" {
			name = ObjectCreatedPut
			if r := strings.TrimSpace(d.Reason); r != "" && !strings.ContainsAny(r, " :") {
				name = "ObjectCreated:" + r
			}
		}
	case "Object Deleted":
		name = objectRemovedDelete
		if d.DeletionType == "Delete Marker Created" {
			name = objectRemovedDeleteMarkerCreated
		}
	default:
		return Record{}, notificationError(body, "an EventBridge event from aws.s3 of detail-type %q, which sluice does not read (route only \"Object Created\" and \"Object Deleted\" to this queue)", env.DetailType)
	}
	if d.Object.Key == "" {
		return Record{}, notificationError(body, "an EventBridge %q event without detail.object.key", env.DetailType)
	}
	var at time.Time
	if env.Time != "" {
		t, err := time.Parse(time.RFC3339, env.Time)
		if err != nil {
			return Record{}, notificationError(body, "an EventBridge event whose time %q is not RFC 3339 (%v)", env.Time, err)
		}
		at = t.UTC()
	}
	return Record{
		EventVersion: "2.1",
		EventSource:  "aws:s3",
		AWSRegion:    env.Region,
		EventTime:    at,
		EventName:    name,
		S3: S3Entity{
			SchemaVersion: "1.0",
			Bucket:        Bucket{Name: d.Bucket.Name},
			Object: Object{
				Key:       d.Object.Key,
				Size:      d.Object.Size,
				ETag:      NormalizeETag(d.Object.ETag),
				VersionID: d.Object.VersionID,
				Sequencer: d.Object.Sequencer,
			},
		},
	}, nil
}
