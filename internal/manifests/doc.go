// Package manifests holds no code: its tests check the deployable artefacts (the Helm
// chart under charts/ and the kustomize tree under config/) by rendering them with the
// pinned helm and kubectl and sending every object to a real kube-apiserver as a
// server-side dry-run, so schema errors surface here instead of in a cluster.
package manifests
