module github.com/mamori-agent/mamori

go 1.26.8

require (
	github.com/google/gousb v1.1.3 // indirect
	github.com/prometheus/client_golang v1.25.0 // indirect
	go.yaml.in/yaml/v3 v3.0.6 // indirect
	golang.org/x/sys v0.50.0 // indirect
)
