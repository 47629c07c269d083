package event

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func sample(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestParseNotificationReadsEveryDialect(t *testing.T) {
	type want struct {
		bucket, key, etag, name, region string
		size                            int64
		at                              time.Time
	}
	awsRecords := []want{
		{"amzn-s3-demo-bucket", "data/2024-05-01 2PM/hydro+power consumption.csv", "d41d8cd98f00b204e9800998ecf8427e", "ObjectCreated:Put", "us-west-2", 1024, time.Date(2024, 5, 1, 12, 30, 45, 123e6, time.UTC)},
		{"amzn-s3-demo-bucket", "café/日本 語.csv", "b1946ac92492d2347c6235b4d2611184-10", "ObjectCreated:CompleteMultipartUpload", "us-west-2", 52428800, time.Date(2024, 5, 1, 12, 30, 46, 0, time.UTC)},
	}
	tests := []struct {
		name string
		file string
		enc  KeyEncoding
		want []want
	}{
		{"AWS S3 straight to SQS, URL-encoded keys", "aws-sqs.json", KeyURL, awsRecords},
		{"SNS envelope around AWS records", "sns.json", KeyURL, awsRecords},
		{"MinIO: s3: names, %2F slashes, quoted ETag, extra fields", "minio.json", KeyURL, []want{
			{"lake", "data/2024-05-01/a b+c.csv", "9b2cf535f27731c974343645a3985328", "ObjectCreated:Put", "", 4176, time.Date(2024, 5, 1, 12, 30, 45, 123e6, time.UTC)},
		}},
		{"versitygw: raw key with space, plus, %2B and unicode", "versitygw.json", KeyRaw, []want{
			{"lake", "data/2024-05-01 2PM/a+b %2B café.csv", "9b2cf535f27731c974343645a3985328", "ObjectCreated:Put", "us-east-1", 4176, time.Date(2024, 5, 1, 12, 30, 45, 123456789, time.UTC)},
		}},
		{"EventBridge Object Created: key taken as sent, whatever enc", "eventbridge-created.json", KeyURL, []want{
			{"amzn-s3-demo-bucket1", "data/2021-11-12 2PM/a+b café.csv", "b1946ac92492d2347c6235b4d2611184", "ObjectCreated:Put", "ca-central-1", 5, time.Date(2021, 11, 12, 0, 0, 0, 0, time.UTC)},
		}},
		{"EventBridge Object Deleted with a delete marker", "eventbridge-deleted.json", KeyURL, []want{
			{"amzn-s3-demo-bucket1", "example-key", "", "ObjectRemoved:DeleteMarkerCreated", "ca-central-1", 0, time.Date(2021, 11, 12, 0, 0, 0, 0, time.UTC)},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			recs, kind, err := ParseNotification(sample(t, tt.file), tt.enc)
			if err != nil {
				t.Fatal(err)
			}
			if kind != NotificationRecords || len(recs) != len(tt.want) {
				t.Fatalf("kind %v, %d records; want records, %d", kind, len(recs), len(tt.want))
			}
			for i, w := range tt.want {
				r := recs[i]
				got := want{r.S3.Bucket.Name, r.S3.Object.Key, r.S3.Object.ETag, r.EventName, r.AWSRegion, r.S3.Object.Size, r.EventTime}
				if got != w {
					t.Errorf("record %d:\n got %+v\nwant %+v", i, got, w)
				}
			}
		})
	}
}

func TestParseNotificationDecodesKeysPerEncoding(t *testing.T) {
	doc := func(key string) []byte {
		return []byte(`{"Records":[{"eventName":"ObjectCreated:Put","s3":{"bucket":{"name":"b"},"object":{"key":"` + key + `","eTag":"e"}}}]}`)
	}
	tests := []struct {
		sent string
		enc  KeyEncoding
		want string
	}{
		{"a+b.csv", KeyURL, "a b.csv"},
		{"a%2Bb.csv", KeyURL, "a+b.csv"},
		{"a%20b.csv", KeyURL, "a b.csv"},
		{"d%C3%A9j%C3%A0/%F0%9F%93%88.csv", KeyURL, "déjà/📈.csv"},
		{"dir%2Fsub%2Fk.csv", KeyURL, "dir/sub/k.csv"},
		{"a+b.csv", KeyRaw, "a+b.csv"},
		{"a%2Bb.csv", KeyRaw, "a%2Bb.csv"},
		{"a b/déjà.csv", KeyRaw, "a b/déjà.csv"},
	}
	for _, tt := range tests {
		recs, _, err := ParseNotification(doc(tt.sent), tt.enc)
		if err != nil {
			t.Errorf("%s %q: %v", tt.enc, tt.sent, err)
			continue
		}
		if got := recs[0].S3.Object.Key; got != tt.want {
			t.Errorf("%s %q: key %q, want %q", tt.enc, tt.sent, got, tt.want)
		}
		// What the bridge publishes reads back as the same key.
		b, err := Marshal(recs[0])
		if err != nil {
			t.Fatal(err)
		}
		back, err := Parse(b, KeyURL)
		if err != nil || back[0].S3.Object.Key != tt.want {
			t.Errorf("%s %q: re-encoded as %s, read back %v %v", tt.enc, tt.sent, b, back, err)
		}
	}
}

func TestParseNotificationReportsTheS3TestEvent(t *testing.T) {
	for _, file := range []string{"test-event.json", "sns-test-event.json"} {
		recs, kind, err := ParseNotification(sample(t, file), KeyURL)
		if err != nil || kind != NotificationTest || len(recs) != 0 {
			t.Errorf("%s: %d records, kind %v, err %v; want a test event", file, len(recs), kind, err)
		}
	}
}

// TestAnEmptyRecordsArrayIsANotificationOfNothing: {"Records":[]} is well
// formed; it is acknowledged, not dead-lettered.
func TestAnEmptyRecordsArrayIsANotificationOfNothing(t *testing.T) {
	recs, kind, err := ParseNotification([]byte(`{"Records":[]}`), KeyURL)
	if err != nil || kind != NotificationRecords || len(recs) != 0 {
		t.Fatalf("got %d records, kind %v, err %v; want no records and no error", len(recs), kind, err)
	}
}

func TestParseNotificationSingleRecordAsParseAcceptsIt(t *testing.T) {
	recs, kind, err := ParseNotification([]byte(`{"eventName":"s3:ObjectCreated:Post","eventTime":"","s3":{"object":{"key":"k+1.json","eTag":"W/\"w\""}}}`), KeyURL)
	if err != nil || kind != NotificationRecords || recs[0].S3.Object.Key != "k 1.json" || recs[0].S3.Object.ETag != "w" || recs[0].EventName != ObjectCreatedPost || !recs[0].EventTime.IsZero() {
		t.Fatalf("got %+v %v %v", recs, kind, err)
	}
}

func TestParseNotificationRejectsWhatItCannotRead(t *testing.T) {
	long := `{"unexpected":"` + strings.Repeat("x", 300) + `"}`
	tests := []struct {
		name, body, says string
	}{
		{"empty", "", "empty"},
		{"not JSON", "hello", "not a JSON object"},
		{"a JSON array", `[{"Records":[]}]`, "not a JSON object"},
		{"broken JSON", `{"Records":[`, "not valid JSON"},
		{"records of the wrong type", `{"Records":"x"}`, "not S3 event records"},
		{"record without key", `{"Records":[{"eventName":"ObjectCreated:Put","s3":{"object":{}}}]}`, "no s3.object.key"},
		{"bad URL encoding", `{"Records":[{"s3":{"object":{"key":"a%zz"}}}]}`, `set the key encoding to "raw"`},
		{"SNS subscription confirmation", `{"Type":"SubscriptionConfirmation","Message":"You have chosen to subscribe","SubscribeURL":"https://example.com"}`, "SubscriptionConfirmation"},
		{"SNS wrapping garbage", `{"Type":"Notification","Message":"hello"}`, "SNS notification's Message"},
		{"SNS in SNS", `{"Type":"Notification","Message":"{\"Type\":\"Notification\",\"Message\":\"{}\"}"}`, "inside an SNS envelope"},
		{"EventBridge restore event", `{"version":"0","detail-type":"Object Restore Completed","source":"aws.s3","detail":{"object":{"key":"k"}}}`, `detail-type "Object Restore Completed"`},
		{"EventBridge without key", `{"detail-type":"Object Created","source":"aws.s3","detail":{"object":{}}}`, "without detail.object.key"},
		{"EventBridge bad time", `{"detail-type":"Object Created","source":"aws.s3","time":"yesterday","detail":{"object":{"key":"k"}}}`, "not RFC 3339"},
		{"unknown object", long, "none of the known shapes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := ParseNotification([]byte(tt.body), KeyURL)
			if err == nil {
				t.Fatal("no error")
			}
			if !errors.Is(err, ErrNotANotification) {
				t.Errorf("error does not wrap ErrNotANotification: %v", err)
			}
			msg := err.Error()
			if !strings.Contains(msg, tt.says) || !strings.Contains(msg, "expected S3 event records") {
				t.Errorf("error %q does not say %q and what was expected", msg, tt.says)
			}
			if tt.body == long && (!strings.Contains(msg, "... (317 bytes)") || strings.Contains(msg, strings.Repeat("x", 186))) {
				t.Errorf("error does not quote only the first 200 bytes: %s", msg)
			}
		})
	}
}

func FuzzParseNotification(f *testing.F) {
	for _, file := range []string{"aws-sqs.json", "sns.json", "minio.json", "versitygw.json", "eventbridge-created.json", "eventbridge-deleted.json", "test-event.json", "sns-test-event.json"} {
		f.Add(sample(f, file), true)
		f.Add(sample(f, file), false)
	}
	f.Add([]byte(`{"Records":[{"eventName":"ObjectCreated:Put","s3":{"object":{"key":"a+b%2Bc%20d/%C3%A9","eTag":"\"x\""}}}]}`), true)
	f.Add([]byte(`{"Type":"Notification","Message":"{\"Records\":[{\"s3\":{\"object\":{\"key\":\"a+b\"}}}]}"}`), true)
	f.Fuzz(func(t *testing.T, data []byte, url bool) {
		enc := KeyRaw
		if url {
			enc = KeyURL
		}
		recs, kind, err := ParseNotification(data, enc)
		if err != nil {
			if !errors.Is(err, ErrNotANotification) {
				t.Fatalf("error does not wrap ErrNotANotification: %v", err)
			}
			if recs != nil || kind != 0 {
				t.Fatalf("error with results %v %v", recs, kind)
			}
			return
		}
		switch kind {
		case NotificationTest:
			if len(recs) != 0 {
				t.Fatalf("test event with records: %+v", recs)
			}
			return
		case NotificationRecords:
			if len(recs) == 0 {
				t.Fatal("records kind without records")
			}
		default:
			t.Fatalf("kind %v", kind)
		}
		for _, r := range recs {
			if r.S3.Object.Key == "" || strings.HasPrefix(r.EventName, "s3:") || strings.HasPrefix(r.S3.Object.ETag, `"`) {
				t.Fatalf("not normalised: %+v", r)
			}
			b, err := Marshal(r)
			if err != nil {
				t.Fatal(err)
			}
			back, kind, err := ParseNotification(b, KeyURL)
			if err != nil || kind != NotificationRecords || back[0].S3.Object.Key != r.S3.Object.Key || back[0].Version() != r.Version() {
				t.Fatalf("round trip of %q through %s: %v %v %+v", r.S3.Object.Key, b, err, kind, back)
			}
		}
	})
}
