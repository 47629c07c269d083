package e2e

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/sluicehq/sluice/job"
	"github.com/sluicehq/sluice/store/storetest"
)

func natsURL() string {
	if u := os.Getenv("SLUICE_TEST_NATS_URL"); u != "" {
		return u
	}
	return "nats://127.0.0.1:4222"
}

// TestHydropowerOnARealS3ServerDrivenByItsBucketNotifications runs the
// reference chain with real S3 semantics: versitygw stores the objects and
// publishes its own S3-format notifications (raw keys, "s3:" event names,
// quoted ETags) to NATS; sluice consumes them from JetStream, runs the job,
// and commits the curated Parquet with the S3 contract (_SUCCESS last).
func TestHydropowerOnARealS3ServerDrivenByItsBucketNotifications(t *testing.T) {
	name := fmt.Sprintf("s3hydro%d", rand.IntN(1e9))
	subject := "sluice." + name + ".events"
	nc, err := nats.Connect(natsURL())
	if err != nil {
		t.Fatalf("NATS at %s is not reachable (run ./scripts/test.sh, which starts it): %v", natsURL(), err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	t.Cleanup(func() { js.DeleteStream(context.Background(), "SLUICE_"+strings.ToUpper(name)) })

	v := storetest.StartVersitygw(t, "--event-nats-url", natsURL(), "--event-nats-topic", subject)
	storeURL := v.Bucket(t, "lake")
	spec := fmt.Sprintf(`name: %s
store: %q
queue: %q
jobs:
  hydropower:
    on: {events: ["s3:ObjectCreated:*"], prefix: data/, suffix: .csv, key_encoding: raw}
    settle: 1s
    curate:
      input: "data/{{.Group}}/"
      rename: {"Hydropower (Terawatt-hours)": consumption}
      columns: {Entity: string, Code: string, Year: int32, consumption: float32}
      output: "curated/{{.Group}}/"
      max_rows_per_file: 1000
`, name, storeURL, natsURL())
	dataDir := t.TempDir()
	d := startRun(t, dataDir, spec, v.Env()...)
	// The stream must exist before versitygw publishes, or its events are lost.
	deadline := time.Now().Add(30 * time.Second)
	for {
		if _, err := js.Stream(context.Background(), "SLUICE_"+strings.ToUpper(name)); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("sluice run did not create its stream:\n%s", d.logTail())
		}
		time.Sleep(50 * time.Millisecond)
	}
	body, err := os.ReadFile("testdata/hydropower-consumption.csv")
	if err != nil {
		t.Fatal(err)
	}
	key := "data/2020-08-07_2PM/hydropower consumption.csv" // a space: versitygw sends it raw
	if _, err := v.Client.PutObject(context.Background(), &s3.PutObjectInput{Bucket: aws.String("lake"), Key: aws.String(key), Body: bytes.NewReader(body)}); err != nil {
		t.Fatal(err)
	}
	rs := waitRuns(t, d, 1)
	r := rs[0]
	if r.State != job.Succeeded || r.Group != "2020-08-07_2PM" || len(r.Inputs) != 1 || r.Inputs[0].Key != key {
		t.Fatalf("run = %+v\n%s", r, d.logTail())
	}
	list, err := v.Client.ListObjectsV2(context.Background(), &s3.ListObjectsV2Input{Bucket: aws.String("lake"), Prefix: aws.String("curated/")})
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, o := range list.Contents {
		keys = append(keys, *o.Key)
	}
	sort.Strings(keys)
	// 4,176 rows at 1,000 per file: five parts, then _SUCCESS.
	if len(keys) != 6 || keys[0] != "curated/2020-08-07_2PM/_SUCCESS" || !strings.HasSuffix(keys[5], "part-00004-"+strings.TrimSuffix(strings.TrimPrefix(keys[1], "curated/2020-08-07_2PM/part-00000-"), "-c000.snappy.parquet")+"-c000.snappy.parquet") {
		t.Fatalf("curated objects on S3 = %v", keys)
	}
	// An independent reader agrees (versitygw's posix backend keeps objects as files).
	dr := duckdb(t, filepath.Join(v.Dir, "lake", "curated", "2020-08-07_2PM"))
	if dr.Rows != 4176 || dr.Nulls["Code"] != 780 {
		t.Fatalf("DuckDB reads %d rows, %d null Codes", dr.Rows, dr.Nulls["Code"])
	}
}
