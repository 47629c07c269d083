// Package awsconf loads the AWS SDK configuration the same way for every
// AWS client sluice makes (SQS queues, the EMR and EMR Serverless runners):
// the SDK's default credential chain, an optional region, and a clear,
// permanent error when no region is known.
package awsconf

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"

	"github.com/sluicehq/sluice/fault"
)

// Load returns the SDK configuration with region (if not "") over the
// defaults. who prefixes its errors ("emr runner"); setRegion says where
// the user sets the region, for the error when none is known.
func Load(ctx context.Context, region, who, setRegion string) (aws.Config, error) {
	var opts []func(*config.LoadOptions) error
	if region != "" {
		opts = append(opts, config.WithRegion(region))
	}
	cfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return cfg, fmt.Errorf("%s: load AWS configuration: %w", who, err)
	}
	if cfg.Region == "" {
		return cfg, fault.Permanent(fmt.Errorf("%s: no AWS region: %s or AWS_REGION", who, setRegion))
	}
	return cfg, nil
}

// Endpoint returns the address override for a client's BaseEndpoint: nil
// for "" (the service's own endpoint).
func Endpoint(url string) *string {
	if url == "" {
		return nil
	}
	return aws.String(url)
}
