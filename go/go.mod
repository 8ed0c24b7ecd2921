module github.com/kong-consul-bridge/kong-consul-bridge/go

go 1.19
