# The operator's image for users with Docker (or buildx for several platforms):
#   docker buildx build --platform linux/amd64,linux/arm64 \
#     --build-arg VERSION=0.1.0 --build-arg COMMIT=$(git rev-parse HEAD) -t IMAGE .
# `make image` builds the same image (same entrypoint, user and binary flags) with no
# Docker daemon; see hack/image.sh.
FROM --platform=$BUILDPLATFORM golang:1.26 AS build
ARG TARGETOS=linux
ARG TARGETARCH=amd64
ARG VERSION=dev
ARG COMMIT=unknown
ARG BUILD_DATE=unknown
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY api/ api/
COPY cmd/ cmd/
COPY controllers/ controllers/
COPY internal/ internal/
RUN CGO_ENABLED=0 GOOS=$TARGETOS GOARCH=$TARGETARCH go build -trimpath \
      -ldflags "-s -w \
        -X github.com/stackscim/stack-scim-operator/internal/version.Version=${VERSION} \
        -X github.com/stackscim/stack-scim-operator/internal/version.Commit=${COMMIT} \
        -X github.com/stackscim/stack-scim-operator/internal/version.Date=${BUILD_DATE}" \
      -o /out/manager ./cmd/manager

# Static binary, no shell, UID 65532; runs with a read-only root filesystem (the chart
# mounts an emptyDir on /tmp).
FROM gcr.io/distroless/static:nonroot
COPY --from=build /out/manager /manager
USER 65532:65532
ENTRYPOINT ["/manager"]
