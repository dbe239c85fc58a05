# syntax=docker/dockerfile:1
#
# anycastd:latest, the image of the anycastd nodes in containerlab/*.clab.yml:
#   docker build -t anycastd:latest .
# It runs anycastd with /etc/anycastd/anycastd.toml and carries the lab's
# site web service (siteweb) and iproute2 for the nodes' exec lines.
#
# anycastd-bird:latest, the BIRD 2 router of containerlab/anycast-bird:
#   docker build --target bird -t anycastd-bird:latest .

FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /out/anycastd ./cmd/anycastd \
 && CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o /out/siteweb ./integration/cmd/siteweb

FROM debian:12-slim AS bird
RUN apt-get update \
 && apt-get install -y --no-install-recommends bird2 iproute2 procps \
 && rm -rf /var/lib/apt/lists/* \
 && mkdir -p /run/bird
CMD ["bird", "-f", "-c", "/etc/bird/bird.conf"]

FROM debian:12-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends iproute2 procps curl ca-certificates \
 && rm -rf /var/lib/apt/lists/*
COPY --from=build /out/anycastd /out/siteweb /usr/local/bin/
ENTRYPOINT ["/usr/local/bin/anycastd"]
CMD ["-config", "/etc/anycastd/anycastd.toml"]
