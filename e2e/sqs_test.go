package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/sluicehq/sluice/job"
	"github.com/sluicehq/sluice/queue/sqsqueue/sqsfake"
	"github.com/sluicehq/sluice/store/storetest"
)

// sqsClient is an SQS client of the local fake (see queue/sqsqueue/sqsfake:
// it speaks SQS's JSON protocol and fails the test on any request real SQS
// would reject). No real SQS endpoint is reachable here.
func sqsClient(fake *sqsfake.Server) *sqs.Client {
	return sqs.New(sqs.Options{Region: sqsfake.Region, BaseEndpoint: aws.String(fake.URL),
		Credentials: credentials.NewStaticCredentialsProvider("test", "test", "")})
}

// The hydropower job triggered by AWS-format notifications arriving through
// SQS, in each dialect AWS sends: an S3 record sent directly (its key
// URL-encoded, with a '+' standing for a space and %2B for a plus), one
// wrapped in an SNS envelope, and an EventBridge "Object Created" event; S3's
// s3:TestEvent is acknowledged and ignored. The bus is SQS too.
func TestHydropowerTriggeredByAWSNotificationsThroughSQS(t *testing.T) {
	fake := sqsfake.Start(t)
	client := sqsClient(fake)
	ctx := context.Background()
	inbox, err := client.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String("lake-events")})
	if err != nil {
		t.Fatal(err)
	}
	v := storetest.StartVersitygw(t) // no notifications of its own: AWS's come through SQS
	storeURL := v.Bucket(t, "lake")
	body, err := os.ReadFile("testdata/hydropower-consumption.csv")
	if err != nil {
		t.Fatal(err)
	}
	keys := map[string]string{ // group → key
		"2020-08-07_2PM": "data/2020-08-07_2PM/hydro power+1.csv",
		"2020-08-08_2PM": "data/2020-08-08_2PM/b.csv",
		"2020-08-09_2PM": "data/2020-08-09_2PM/c.csv",
	}
	etags := map[string]string{}
	for _, k := range keys {
		out, err := v.Client.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("lake"), Key: aws.String(k), Body: bytes.NewReader(body)})
		if err != nil {
			t.Fatal(err)
		}
		etags[k] = aws.ToString(out.ETag)
	}
	now := time.Now().UTC().Format("2006-01-02T15:04:05.000Z")
	record := func(key string) string {
		return fmt.Sprintf(`{"Records":[{"eventVersion":"2.1","eventSource":"aws:s3","awsRegion":"us-east-1","eventTime":%q,"eventName":"ObjectCreated:Put","userIdentity":{"principalId":"AWS:X"},"requestParameters":{"sourceIPAddress":"10.0.0.1"},"responseElements":{"x-amz-request-id":"R","x-amz-id-2":"I"},"s3":{"s3SchemaVersion":"1.0","configurationId":"sluice-data","bucket":{"name":"lake","ownerIdentity":{"principalId":"O"},"arn":"arn:aws:s3:::lake"},"object":{"key":%q,"size":%d,"eTag":%q,"sequencer":"0055AED6DCD90281E5"}}}]}`,
			now, key, len(body), strings.Trim(etags[strings.ReplaceAll(strings.ReplaceAll(strings.ReplaceAll(key, "+", " "), "%2B", "+"), "%20", " ")], `"`))
	}
	sns, _ := json.Marshal(map[string]string{"Type": "Notification", "MessageId": "m-1", "TopicArn": "arn:aws:sns:us-east-1:000000000000:lake",
		"Subject": "Amazon S3 Notification", "Message": record(keys["2020-08-08_2PM"]), "Timestamp": now, "SignatureVersion": "1", "Signature": "c2ln",
		"SigningCertURL": "https://sns.example/cert.pem", "UnsubscribeURL": "https://sns.example/unsubscribe"})
	eventBridge := fmt.Sprintf(`{"version":"0","id":"e-1","detail-type":"Object Created","source":"aws.s3","account":"000000000000","time":%q,"region":"us-east-1","resources":["arn:aws:s3:::lake"],"detail":{"version":"0","bucket":{"name":"lake"},"object":{"key":%q,"size":%d,"etag":%q,"sequencer":"00617F08299329D189"},"request-id":"R","requester":"000000000000","source-ip-address":"10.0.0.1","reason":"PutObject"}}`,
		now, keys["2020-08-09_2PM"], len(body), strings.Trim(etags[keys["2020-08-09_2PM"]], `"`))
	testEvent := fmt.Sprintf(`{"Service":"Amazon S3","Event":"s3:TestEvent","Time":%q,"Bucket":"lake","RequestId":"R","HostId":"H"}`, now)
	for _, m := range []string{
		testEvent,
		record("data/2020-08-07_2PM/hydro+power%2B1.csv"), // AWS URL-encodes keys: '+' is a space, %2B a plus
		string(sns),
		eventBridge,
	} {
		if _, err := client.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: inbox.QueueUrl, MessageBody: aws.String(m)}); err != nil {
			t.Fatal(err)
		}
	}

	name := fmt.Sprintf("sqshydro%d", rand.IntN(1e9))
	spec := fmt.Sprintf(`name: %s
store: %q
queue: "sqs://%s?region=us-east-1&endpoint=%s&poll_wait=1s"
notifications: {url: "sqs://lake-events?region=us-east-1&endpoint=%s&poll_wait=1s", key_encoding: url}
jobs:
  hydropower:
    on: {prefix: data/, suffix: .csv}
    settle: 1s
    curate:
      input: "data/{{.Group}}/"
      rename: {"Hydropower (Terawatt-hours)": consumption}
      columns: {Entity: string, Code: string, Year: int32, consumption: float32}
      output: "curated/{{.Group}}/"
`, name, storeURL, name, fake.URL, fake.URL)
	dataDir := t.TempDir()
	d := startRun(t, dataDir, spec, v.Env()...)
	rs := waitRuns(t, d, 3)
	got := map[string]string{}
	for _, r := range rs {
		if r.State != job.Succeeded || len(r.Inputs) != 1 {
			t.Fatalf("run %+v did not succeed with one input\n%s", r, d.logTail())
		}
		got[r.Group] = r.Inputs[0].Key
	}
	for g, k := range keys {
		if got[g] != k {
			t.Errorf("group %s ran on %q, want %q (decoded from its notification)", g, got[g], k)
		}
	}
	// The test event was acknowledged (deleted) and ignored: the inbox is
	// empty and nothing was dead-lettered.
	deadline := time.Now().Add(30 * time.Second)
	for {
		attrs, err := client.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: inbox.QueueUrl,
			AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameApproximateNumberOfMessages, sqstypes.QueueAttributeNameApproximateNumberOfMessagesNotVisible}})
		if err != nil {
			t.Fatal(err)
		}
		if attrs.Attributes["ApproximateNumberOfMessages"] == "0" && attrs.Attributes["ApproximateNumberOfMessagesNotVisible"] == "0" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the inbox still holds notifications: %v\n%s", attrs.Attributes, d.logTail())
		}
		time.Sleep(100 * time.Millisecond)
	}
	if r := mustRun(t, v.Env(), "dlq", "ls", "--data-dir="+dataDir); strings.TrimSpace(r.stdout) != "no dead letters" {
		t.Errorf("dead letters after the notifications:\n%s", r.stdout)
	}
	names := fake.QueueNames()
	if !contains(names, name+"-job-hydropower") { // the URL names the prefix
		t.Errorf("SQS queues = %v, want the job's subscription queue %s-job-hydropower", names, name)
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
