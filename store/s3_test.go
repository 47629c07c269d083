package store_test

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/sluicehq/sluice/store"
	"github.com/sluicehq/sluice/store/storetest"
)

const (
	s3Access = "sluicetest"
	s3Secret = "sluicetestsecret"
)

// versitygw starts a real S3-compatible server (versitygw, posix backend)
// on a free loopback port and returns its endpoint.
func versitygw(t *testing.T) string {
	t.Helper()
	bin, err := exec.LookPath("versitygw")
	if err != nil {
		gopath, _ := exec.Command("go", "env", "GOPATH").Output()
		bin = filepath.Join(strings.TrimSpace(string(gopath)), "bin", "versitygw")
		if _, err := os.Stat(bin); err != nil {
			t.Fatalf("versitygw is not installed: run ./scripts/test.sh, which installs it (go install github.com/versity/versitygw/cmd/versitygw@v1.8.0)")
		}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	dir := t.TempDir()
	cmd := exec.Command(bin, "--port", addr, "--access", s3Access, "--secret", s3Secret, "posix", dir)
	out, _ := os.Create(filepath.Join(t.TempDir(), "versitygw.log"))
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatalf("start versitygw: %v", err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait(); out.Close() })
	deadline := time.Now().Add(20 * time.Second)
	for {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(out.Name())
			t.Fatalf("versitygw did not listen on %s in 20s:\n%s", addr, log)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return "http://" + addr
}

func TestS3StorePassesTheConformanceSuiteOnVersitygw(t *testing.T) {
	endpoint := versitygw(t)
	t.Setenv("AWS_ACCESS_KEY_ID", s3Access)
	t.Setenv("AWS_SECRET_ACCESS_KEY", s3Secret)
	t.Setenv("AWS_REGION", "us-east-1")
	client := s3.New(s3.Options{
		Region:       "us-east-1",
		BaseEndpoint: aws.String(endpoint),
		UsePathStyle: true,
		Credentials:  credentials.NewStaticCredentialsProvider(s3Access, s3Secret, ""),
	})
	var n atomic.Int64
	storetest.Run(t, func(t *testing.T) *store.Store {
		bucket := fmt.Sprintf("sluice-test-%d", n.Add(1))
		ctx := context.Background()
		if _, err := client.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(bucket)}); err != nil {
			t.Fatalf("create bucket %s: %v", bucket, err)
		}
		s, err := store.Open(ctx, "s3://"+bucket+"?endpoint="+endpoint+"&region=us-east-1&use_path_style=true", nil)
		if err != nil {
			t.Fatal(err)
		}
		if s.LocalDir() != "" || s.Bucket() != bucket {
			t.Fatalf("s3 store: LocalDir %q, Bucket %q", s.LocalDir(), s.Bucket())
		}
		return s
	})
}
