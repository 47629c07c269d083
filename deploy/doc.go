// Package deploy holds no code: it is the home of sluice's container image
// (Dockerfile) and Kubernetes manifests (kubernetes/), and of the tests that
// keep them honest — every manifest decodes strictly into the Kubernetes API
// types, the Deployments' arguments are ones the sluice binary accepts, the
// pipeline spec in the ConfigMap parses, and the Dockerfile's build command
// gives a statically linked binary. See README.md beside this file.
package deploy
