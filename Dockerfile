# syntax=docker/dockerfile:1
#
# anycastd:latest, the image of the anycastd nodes in containerlab/*.clab.yml
# (Debian 12 slim; the default target):
#   docker build --build-arg VERSION=$(git describe --tags --always) -t anycastd:latest .
# It runs anycastd with /etc/anycastd/anycastd.toml and carries anycastctl,
# the lab's site web service (siteweb) and iproute2 for the nodes' exec lines.
#
# anycastd-bird:latest, the BIRD 2 router of containerlab/anycast-bird:
#   docker build --target bird -t anycastd-bird:latest .
#
# The static image for production and contrib/kubernetes/ (FROM scratch:
# anycastd and anycastctl, CA certificates, nothing else; no shell, so
# `exec` checks can only run what you add):
#   docker build --target static --build-arg VERSION=1.2.3 -t anycastd:1.2.3-static .
# (make image / make image-static do the same; see mk/container.mk.)

FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /out/anycastd ./cmd/anycastd \
 && CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /out/anycastctl ./cmd/anycastctl \
 && CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o /out/siteweb ./integration/cmd/siteweb
# The static image's file system: the config and state directories and the
# CA certificates (https checks, TLS to the API).
RUN mkdir -p /rootfs/etc/anycastd /rootfs/run/anycastd /rootfs/etc/ssl/certs \
 && cp /etc/ssl/certs/ca-certificates.crt /rootfs/etc/ssl/certs/

FROM debian:12-slim AS bird
RUN apt-get update \
 && apt-get install -y --no-install-recommends bird2 iproute2 procps \
 && rm -rf /var/lib/apt/lists/* \
 && mkdir -p /run/bird
CMD ["bird", "-f", "-c", "/etc/bird/bird.conf"]

# The fleet lab's coordinator (containerlab/anycast-fleet): Debian's etcd
# with a shell and iproute2 for containerlab's exec lines (the official etcd
# images are distroless).
#   docker build --target etcd -t anycastd-etcd:latest .
FROM debian:12-slim AS etcd
RUN apt-get update \
 && apt-get install -y --no-install-recommends etcd-server iproute2 \
 && rm -rf /var/lib/apt/lists/*
CMD ["etcd", "--config-file", "/etc/etcd/etcd.conf.yml"]

# The static image. It runs as root (UID 0) on purpose: anycastd needs
# CAP_NET_ADMIN (VIP addresses over netlink) and CAP_NET_BIND_SERVICE (BGP on
# port 179), and a container runtime gives a non-root process no effective
# capabilities (no ambient capabilities; file capabilities are ignored under
# no_new_privs, i.e. allowPrivilegeEscalation: false). Give it only those two.
# No /etc/group: leave `[api] group` unset (the socket is root's, mode 0660).
#   docker run --network host --cap-drop ALL --cap-add NET_ADMIN --cap-add NET_BIND_SERVICE \
#     --security-opt no-new-privileges --read-only \
#     -v /etc/anycastd:/etc/anycastd:ro -v /run/anycastd:/run/anycastd anycastd:1.2.3-static
FROM scratch AS static
COPY --from=build /rootfs/ /
COPY --from=build /out/anycastd /out/anycastctl /usr/local/bin/
ENV PATH=/usr/local/bin
USER 0:0
ENTRYPOINT ["/usr/local/bin/anycastd"]
CMD ["-config", "/etc/anycastd/anycastd.toml"]

FROM debian:12-slim AS lab
RUN apt-get update \
 && apt-get install -y --no-install-recommends iproute2 procps curl ca-certificates \
 && rm -rf /var/lib/apt/lists/*
COPY --from=build /out/anycastd /out/anycastctl /out/siteweb /usr/local/bin/
ENTRYPOINT ["/usr/local/bin/anycastd"]
CMD ["-config", "/etc/anycastd/anycastd.toml"]
