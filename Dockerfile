# certlens: a static binary in an image with nothing else but CA certificates.
# Build: docker build -t certlens .
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o /out/certlens ./cmd/certlens \
 && mkdir -p /out/data && chown 65532:65532 /out/data

FROM scratch
COPY --from=build /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY --from=build /out/certlens /certlens
COPY --from=build --chown=65532:65532 /out/data /data
USER 65532:65532
ENV XDG_DATA_HOME=/data XDG_CONFIG_HOME=/data
VOLUME ["/data"]
EXPOSE 8080 8443 9090
# The healthcheck uses the binary itself: the image has no shell or curl.
HEALTHCHECK --interval=10s --timeout=3s CMD ["/certlens", "health", "http://127.0.0.1:9090/healthz"]
ENTRYPOINT ["/certlens"]
# Inside a container the proxy must listen on every interface; clients then
# arrive from Docker's private networks (publish the port on 127.0.0.1 only),
# and certlens refuses to start as a proxy open to anyone (access.*).
CMD ["serve", "--listen", "0.0.0.0:8080", "--admin-listen", "0.0.0.0:9090", \
     "--allow-client", "172.16.0.0/12", "--allow-client", "192.168.0.0/16", "--allow-client", "10.0.0.0/8"]
