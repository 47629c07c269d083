// Package event defines sluice's object-created notification: a record in the
// S3 event notification JSON format, as AWS S3, MinIO and versitygw publish it
// and as sluice emits it for its own writes.
//
// sluice uses its own record type rather than the Lambda library's because
// dialects differ in ways that type hides: AWS URL-encodes keys ("a+b.csv" is
// "a b.csv") while versitygw sends them raw, versitygw prefixes event names
// with "s3:" and quotes ETags, and sequencers restart at zero. Parse therefore
// takes the key encoding as an argument (a per-subscription setting, because
// the record itself does not say), and normalises names and ETags. The
// sequencer is carried but never used to deduplicate: the identity of an
// object version is its key plus ETag (see Record.Version).
package event

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"
)

// Event names, normalised without the "s3:" prefix that some servers add.
const (
	ObjectCreatedPut                     = "ObjectCreated:Put"
	ObjectCreatedPost                    = "ObjectCreated:Post"
	ObjectCreatedCopy                    = "ObjectCreated:Copy"
	ObjectCreatedCompleteMultipartUpload = "ObjectCreated:CompleteMultipartUpload"
)

// KeyEncoding says how object keys are written in incoming records.
type KeyEncoding string

const (
	// KeyURL means keys are URL-encoded as AWS does it ("+" is a space).
	// It is the default, and what sluice itself writes.
	KeyURL KeyEncoding = "url"
	// KeyRaw means keys are sent as they are (versitygw).
	KeyRaw KeyEncoding = "raw"
)

// ParseKeyEncoding accepts "url", "raw" or "" (meaning url).
func ParseKeyEncoding(s string) (KeyEncoding, error) {
	switch strings.ToLower(s) {
	case "", "url", "urlencoded", "aws":
		return KeyURL, nil
	case "raw", "none", "plain":
		return KeyRaw, nil
	}
	return "", fmt.Errorf("unknown key encoding %q: write \"url\" (AWS S3, the default) or \"raw\" (versitygw)", s)
}

// Record is one S3 event notification record. Object.Key is always the
// decoded key; encoding happens only in Marshal.
type Record struct {
	EventVersion string    `json:"eventVersion"`
	EventSource  string    `json:"eventSource"`
	AWSRegion    string    `json:"awsRegion,omitempty"`
	EventTime    time.Time `json:"eventTime"`
	EventName    string    `json:"eventName"`
	S3           S3Entity  `json:"s3"`
}

// S3Entity is the s3 part of a record.
type S3Entity struct {
	SchemaVersion   string `json:"s3SchemaVersion"`
	ConfigurationID string `json:"configurationId,omitempty"`
	Bucket          Bucket `json:"bucket"`
	Object          Object `json:"object"`
}

// Bucket names the bucket (for a local store, the store's name).
type Bucket struct {
	Name string `json:"name"`
	ARN  string `json:"arn,omitempty"`
}

// Object describes the object version the event is about.
type Object struct {
	Key       string `json:"key"`
	Size      int64  `json:"size"`
	ETag      string `json:"eTag"`
	VersionID string `json:"versionId,omitempty"`
	Sequencer string `json:"sequencer,omitempty"`
}

// Version identifies one object version: key plus ETag.
type Version struct {
	Key  string
	ETag string
}

func (v Version) String() string { return v.Key + "@" + v.ETag }

// Version returns the record's object version.
func (r Record) Version() Version { return Version{Key: r.S3.Object.Key, ETag: r.S3.Object.ETag} }

// New returns an ObjectCreated:Put record for an object sluice wrote or found.
func New(bucket, key string, size int64, etag string, at time.Time) Record {
	return Record{
		EventVersion: "2.1",
		EventSource:  "sluice:s3",
		EventTime:    at.UTC(),
		EventName:    ObjectCreatedPut,
		S3: S3Entity{
			SchemaVersion: "1.0",
			Bucket:        Bucket{Name: bucket},
			Object:        Object{Key: key, Size: size, ETag: NormalizeETag(etag)},
		},
	}
}

// NormalizeETag strips surrounding quotes and a weak prefix.
func NormalizeETag(etag string) string {
	etag = strings.TrimPrefix(strings.TrimSpace(etag), "W/")
	return strings.Trim(etag, `"`)
}

// NormalizeName removes the "s3:" prefix some servers put on event names.
func NormalizeName(name string) string { return strings.TrimPrefix(name, "s3:") }

type notification struct {
	Records []Record `json:"Records"`
}

// Marshal encodes records as one S3 notification document, with keys
// URL-encoded the way AWS writes them.
func Marshal(recs ...Record) ([]byte, error) {
	out := make([]Record, len(recs))
	for i, r := range recs {
		r.S3.Object.Key = EncodeKey(r.S3.Object.Key)
		out[i] = r
	}
	return json.Marshal(notification{Records: out})
}

// EncodeKey URL-encodes a key as AWS does in notifications ("/" kept, space as "+").
func EncodeKey(key string) string {
	parts := strings.Split(key, "/")
	for i, p := range parts {
		parts[i] = url.QueryEscape(p)
	}
	return strings.Join(parts, "/")
}

// ErrNoRecords is returned by Parse for a document without records (for
// example the s3:TestEvent AWS sends when notifications are configured).
var ErrNoRecords = errors.New("event: notification has no records")

// Parse decodes an S3 notification document (or a single record) and
// normalises it: keys decoded per enc, names without "s3:", ETags unquoted.
func Parse(data []byte, enc KeyEncoding) ([]Record, error) {
	var n notification
	if err := json.Unmarshal(data, &n); err != nil {
		return nil, fmt.Errorf("event: not an S3 notification: %w", err)
	}
	if len(n.Records) == 0 {
		var r Record
		if err := json.Unmarshal(data, &r); err == nil && r.S3.Object.Key != "" {
			n.Records = []Record{r}
		}
	}
	if len(n.Records) == 0 {
		return nil, ErrNoRecords
	}
	for i := range n.Records {
		r := &n.Records[i]
		r.EventName = NormalizeName(r.EventName)
		r.S3.Object.ETag = NormalizeETag(r.S3.Object.ETag)
		if r.S3.Object.Key == "" {
			return nil, fmt.Errorf("event: record %d has no s3.object.key", i)
		}
		if enc != KeyRaw {
			k, err := url.QueryUnescape(r.S3.Object.Key)
			if err != nil {
				return nil, fmt.Errorf("event: record %d: key %q is not URL-encoded (set key encoding \"raw\" for servers that send raw keys): %w", i, r.S3.Object.Key, err)
			}
			r.S3.Object.Key = k
		}
	}
	return n.Records, nil
}

// Filter selects records like an S3 notification configuration: event name
// patterns ("ObjectCreated:*", "s3:ObjectCreated:Put", ...), a key prefix and
// a key suffix. The zero Filter matches every ObjectCreated event.
type Filter struct {
	Events []string
	Prefix string
	Suffix string
}

// Match reports whether r passes the filter.
func (f Filter) Match(r Record) bool {
	key := r.S3.Object.Key
	if !strings.HasPrefix(key, f.Prefix) || !strings.HasSuffix(key, f.Suffix) {
		return false
	}
	name := NormalizeName(r.EventName)
	if len(f.Events) == 0 {
		return strings.HasPrefix(name, "ObjectCreated:")
	}
	for _, p := range f.Events {
		p = NormalizeName(p)
		if p == name || (strings.HasSuffix(p, "*") && strings.HasPrefix(name, strings.TrimSuffix(p, "*"))) {
			return true
		}
	}
	return false
}

// ValidEventPattern reports whether p names an event sluice can match.
func ValidEventPattern(p string) bool {
	switch NormalizeName(p) {
	case "ObjectCreated:*", ObjectCreatedPut, ObjectCreatedPost, ObjectCreatedCopy, ObjectCreatedCompleteMultipartUpload:
		return true
	}
	return false
}
