package event

import (
	"strings"
	"testing"
	"time"
)

func TestParseNormalisesAWSAndVersityDialects(t *testing.T) {
	tests := []struct {
		name, doc string
		enc       KeyEncoding
		key, etag string
		evName    string
	}{
		{"aws url-encoded key", `{"Records":[{"eventName":"ObjectCreated:Put","s3":{"object":{"key":"data/2020-08-07_2PM/hydropower+consumption.csv","eTag":"abc","sequencer":"0A"}}}]}`,
			KeyURL, "data/2020-08-07_2PM/hydropower consumption.csv", "abc", "ObjectCreated:Put"},
		{"aws percent escapes", `{"Records":[{"eventName":"ObjectCreated:CompleteMultipartUpload","s3":{"object":{"key":"a%2Bb/c%3Dd.csv","eTag":"x-2"}}}]}`,
			KeyURL, "a+b/c=d.csv", "x-2", "ObjectCreated:CompleteMultipartUpload"},
		{"versitygw raw key, s3: prefix, quoted etag", `{"Records":[{"eventName":"s3:ObjectCreated:Put","s3":{"object":{"key":"data/d/hydropower consumption.csv","eTag":"\"d41d8\"","sequencer":"0"}}}]}`,
			KeyRaw, "data/d/hydropower consumption.csv", "d41d8", "ObjectCreated:Put"},
		{"raw key keeps plus", `{"Records":[{"eventName":"s3:ObjectCreated:Copy","s3":{"object":{"key":"a+b.csv","eTag":"e"}}}]}`,
			KeyRaw, "a+b.csv", "e", "ObjectCreated:Copy"},
		{"single record document", `{"eventName":"ObjectCreated:Post","s3":{"object":{"key":"k.json","eTag":"W/\"w\""}}}`,
			KeyURL, "k.json", "w", "ObjectCreated:Post"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			recs, err := Parse([]byte(tt.doc), tt.enc)
			if err != nil {
				t.Fatal(err)
			}
			r := recs[0]
			if r.S3.Object.Key != tt.key || r.S3.Object.ETag != tt.etag || r.EventName != tt.evName {
				t.Fatalf("got key %q etag %q name %q; want %q %q %q", r.S3.Object.Key, r.S3.Object.ETag, r.EventName, tt.key, tt.etag, tt.evName)
			}
		})
	}
}

func TestParseRejectsWhatIsNotANotification(t *testing.T) {
	for _, doc := range []string{`not json`, `{"Records":[]}`, `{"Records":[{"s3":{"object":{}}}]}`, `{"Records":[{"s3":{"object":{"key":"%zz"}}}]}`} {
		if _, err := Parse([]byte(doc), KeyURL); err == nil {
			t.Errorf("Parse(%s) succeeded", doc)
		}
	}
	if _, err := Parse([]byte(`{"Service":"Amazon S3","Event":"s3:TestEvent"}`), KeyURL); err != ErrNoRecords {
		t.Errorf("test event: got %v, want ErrNoRecords", err)
	}
}

func TestMarshalEncodesKeysLikeAWSAndParseRoundTrips(t *testing.T) {
	r := New("lake", "data/2020-08-07 2PM/a+b.csv", 42, `"etag"`, time.Date(2020, 8, 7, 14, 0, 0, 0, time.UTC))
	b, err := Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), `"key":"data/2020-08-07+2PM/a%2Bb.csv"`) {
		t.Fatalf("key not URL-encoded like AWS: %s", b)
	}
	recs, err := Parse(b, KeyURL)
	if err != nil {
		t.Fatal(err)
	}
	if got := recs[0].Version(); got != (Version{"data/2020-08-07 2PM/a+b.csv", "etag"}) {
		t.Fatalf("round trip version = %v", got)
	}
	if recs[0].S3.Bucket.Name != "lake" || recs[0].S3.Object.Size != 42 {
		t.Fatalf("round trip = %+v", recs[0])
	}
}

func TestFilterMatchesLikeAnS3NotificationConfiguration(t *testing.T) {
	put := New("b", "data/2020/x.csv", 1, "e", time.Now())
	mp := put
	mp.EventName = "ObjectCreated:CompleteMultipartUpload"
	del := put
	del.EventName = "ObjectRemoved:Delete"
	tests := []struct {
		f    Filter
		r    Record
		want bool
	}{
		{Filter{}, put, true},
		{Filter{}, del, false},
		{Filter{Prefix: "data/", Suffix: ".csv"}, put, true},
		{Filter{Prefix: "raw/"}, put, false},
		{Filter{Suffix: ".json"}, put, false},
		{Filter{Events: []string{"s3:ObjectCreated:*"}}, mp, true},
		{Filter{Events: []string{"s3:ObjectCreated:Put"}}, mp, false},
		{Filter{Events: []string{"ObjectCreated:CompleteMultipartUpload"}}, mp, true},
	}
	for i, tt := range tests {
		if got := tt.f.Match(tt.r); got != tt.want {
			t.Errorf("%d: %+v.Match(%s) = %v", i, tt.f, tt.r.EventName, got)
		}
	}
	if ValidEventPattern("s3:ObjectCreated:Delete") || !ValidEventPattern("s3:ObjectCreated:*") {
		t.Error("ValidEventPattern")
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(`{"Records":[{"eventName":"ObjectCreated:Put","s3":{"object":{"key":"a+b%20c","eTag":"\"x\""}}}]}`), true)
	f.Add([]byte(`{"eventName":"s3:ObjectCreated:Put","s3":{"object":{"key":"k"}}}`), false)
	f.Fuzz(func(t *testing.T, data []byte, url bool) {
		enc := KeyRaw
		if url {
			enc = KeyURL
		}
		recs, err := Parse(data, enc)
		if err != nil {
			return
		}
		for _, r := range recs {
			if r.S3.Object.Key == "" || strings.HasPrefix(r.EventName, "s3:") || strings.Contains(r.S3.Object.ETag, `"`) && strings.HasPrefix(r.S3.Object.ETag, `"`) {
				t.Fatalf("not normalised: %+v", r)
			}
			b, err := Marshal(r)
			if err != nil {
				t.Fatal(err)
			}
			back, err := Parse(b, KeyURL)
			if err != nil || back[0].S3.Object.Key != r.S3.Object.Key {
				t.Fatalf("round trip of %q: %v %+v", r.S3.Object.Key, err, back)
			}
		}
	})
}
