# Container images (Dockerfile; needs a Docker engine with BuildKit):
#   make image          anycastd:$(VERSION) and anycastd:latest, the Debian 12
#                       slim image the containerlab topologies run
#   make image-static   anycastd:$(VERSION)-static, FROM scratch, for
#                       contrib/kubernetes/ (push it, then set it in
#                       contrib/kubernetes/30-daemonset.yaml)
# IMAGE names the repository (e.g. IMAGE=registry.example.com/anycastd/anycastd).
DOCKER ?= docker
IMAGE  ?= anycastd

.PHONY: image image-static
image:
	$(DOCKER) build --build-arg VERSION=$(VERSION) -t $(IMAGE):$(VERSION) -t $(IMAGE):latest .

image-static:
	$(DOCKER) build --target static --build-arg VERSION=$(VERSION) -t $(IMAGE):$(VERSION)-static .
