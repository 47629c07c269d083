package sqsfake

import (
	"net/http"
	"strings"
	"sync"
	"testing"
)

// The fake fails on requests the SDK must never send: it is only worth
// trusting if it notices them.
func TestFakeReportsProtocolViolations(t *testing.T) {
	var mu sync.Mutex
	var got []string
	s := New(func(msg string) { mu.Lock(); got = append(got, msg); mu.Unlock() }, nil)
	defer s.Close()
	const sig = "AWS4-HMAC-SHA256 Credential=AKID/20260101/us-east-1/sqs/aws4_request, SignedHeaders=host;x-amz-date, Signature=0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	for _, tc := range []struct {
		name, target, ctype, auth, body, want string
	}{
		{"query protocol", "", "application/x-www-form-urlencoded", sig, "Action=ListQueues", "Content-Type"},
		{"no signature", "AmazonSQS.ListQueues", "application/x-amz-json-1.0", "", "{}", "SigV4"},
		{"unknown field", "AmazonSQS.CreateQueue", "application/x-amz-json-1.0", sig, `{"QueueName":"q","Colour":"blue"}`, "unknown field"},
		{"missing field", "AmazonSQS.SendMessage", "application/x-amz-json-1.0", sig, `{"QueueUrl":"x"}`, "MessageBody"},
		{"missing queue URL", "AmazonSQS.DeleteMessage", "application/x-amz-json-1.0", sig, `{"ReceiptHandle":"x#y"}`, "QueueUrl"},
		{"unknown operation", "AmazonSQS.PurgeQueue", "application/x-amz-json-1.0", sig, `{}`, "unsupported operation"},
	} {
		req, _ := http.NewRequest(http.MethodPost, s.URL+"/", strings.NewReader(tc.body))
		req.Header.Set("Content-Type", tc.ctype)
		if tc.target != "" {
			req.Header.Set("X-Amz-Target", tc.target)
		}
		if tc.auth != "" {
			req.Header.Set("Authorization", tc.auth)
		}
		req.Header.Set("X-Amz-Date", "20260101T000000Z")
		mu.Lock()
		before := len(got)
		mu.Unlock()
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("%s: status %d, want 400", tc.name, resp.StatusCode)
		}
		mu.Lock()
		if len(got) != before+1 || !strings.Contains(got[len(got)-1], tc.want) {
			t.Errorf("%s: reported %v, want one violation mentioning %q", tc.name, got[before:], tc.want)
		}
		mu.Unlock()
	}
}
