package store_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/sluicehq/sluice/store"
	"github.com/sluicehq/sluice/store/storetest"
)

func TestS3StorePassesTheConformanceSuiteOnVersitygw(t *testing.T) {
	v := storetest.StartVersitygw(t)
	t.Setenv("AWS_ACCESS_KEY_ID", storetest.S3Access)
	t.Setenv("AWS_SECRET_ACCESS_KEY", storetest.S3Secret)
	t.Setenv("AWS_REGION", storetest.S3Region)
	var n atomic.Int64
	storetest.Run(t, func(t *testing.T) *store.Store {
		bucket := fmt.Sprintf("sluice-test-%d", n.Add(1))
		s, err := store.Open(context.Background(), v.Bucket(t, bucket), nil)
		if err != nil {
			t.Fatal(err)
		}
		if s.LocalDir() != "" || s.Bucket() != bucket {
			t.Fatalf("s3 store: LocalDir %q, Bucket %q", s.LocalDir(), s.Bucket())
		}
		return s
	})
}
