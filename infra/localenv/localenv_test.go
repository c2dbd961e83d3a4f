package localenv

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
)

// setAll sets every variable of the env file to a plausible value, then applies overrides ("" unsets).
func setAll(t *testing.T, overrides map[string]string) {
	t.Helper()
	values := map[string]string{
		"PULSAR_SERVICE_URL":        "pulsar://127.0.0.1:6650",
		"PULSAR_ADMIN_URL":          "http://127.0.0.1:8080",
		"AWS_ENDPOINT_URL":          "http://127.0.0.1:5000",
		"AWS_ENDPOINT_URL_DYNAMODB": "http://127.0.0.1:8000",
		"AWS_REGION":                "us-east-1",
		"AWS_ACCESS_KEY_ID":         "test",
		"AWS_SECRET_ACCESS_KEY":     "test",
		"PULSAR_HOME":               "/opt/pulsar",
		"KP_VENV":                   "/opt/venv",
	}
	for k, v := range overrides {
		values[k] = v
	}
	for k, v := range values {
		t.Setenv(k, v)
	}
}

func TestLoad(t *testing.T) {
	tests := []struct {
		name        string
		overrides   map[string]string
		wantErr     []string // substrings of the error; nil means success
		wantService string
	}{
		{name: "complete", wantService: "pulsar://127.0.0.1:6650"},
		{name: "user broker", overrides: map[string]string{"PULSAR_SERVICE_URL": " pulsar://broker:6650 "}, wantService: "pulsar://broker:6650"},
		{name: "one missing", overrides: map[string]string{"AWS_ENDPOINT_URL_DYNAMODB": ""}, wantErr: []string{"AWS_ENDPOINT_URL_DYNAMODB not set", "make local-up"}},
		{
			name:      "all missing named at once",
			overrides: map[string]string{"PULSAR_SERVICE_URL": "", "KP_VENV": "", "AWS_REGION": "  "},
			wantErr:   []string{"PULSAR_SERVICE_URL, AWS_REGION, KP_VENV not set"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			setAll(t, tt.overrides)
			env, err := Load()
			if tt.wantErr != nil {
				if err == nil {
					t.Fatalf("Load() = %+v, want an error", env)
				}
				for _, want := range tt.wantErr {
					if !strings.Contains(err.Error(), want) {
						t.Errorf("Load() error %q does not contain %q", err, want)
					}
				}
				return
			}
			if err != nil {
				t.Fatalf("Load(): %v", err)
			}
			if env.PulsarServiceURL != tt.wantService || env.DynamoDBEndpointURL != "http://127.0.0.1:8000" || env.Venv != "/opt/venv" {
				t.Errorf("Load() = %+v", env)
			}
		})
	}
}

func TestReachable(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	open := "http://" + l.Addr().String()
	closedPorts, err := freePorts(1)
	if err != nil {
		t.Fatal(err)
	}
	closed := "http://127.0.0.1:" + strconv.Itoa(closedPorts[0])

	tests := []struct {
		name    string
		env     Env
		wantErr []string
	}{
		{name: "all answer", env: Env{PulsarServiceURL: "pulsar://" + l.Addr().String(), PulsarAdminURL: open, AWSEndpointURL: open, DynamoDBEndpointURL: open}},
		{
			name:    "dynamodb down",
			env:     Env{PulsarServiceURL: "pulsar://" + l.Addr().String(), PulsarAdminURL: open, AWSEndpointURL: open, DynamoDBEndpointURL: closed},
			wantErr: []string{"DynamoDB Local at AWS_ENDPOINT_URL_DYNAMODB=" + closed + " unreachable", "make local-up"},
		},
		{
			name:    "bad URL",
			env:     Env{PulsarServiceURL: "pulsar://", PulsarAdminURL: open, AWSEndpointURL: open, DynamoDBEndpointURL: open},
			wantErr: []string{"Pulsar broker at PULSAR_SERVICE_URL", "has no host"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.env.Reachable(context.Background())
			if tt.wantErr == nil {
				if err != nil {
					t.Fatalf("Reachable(): %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("Reachable() = nil, want an error")
			}
			for _, want := range tt.wantErr {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("Reachable() error %q does not contain %q", err, want)
				}
			}
		})
	}
}

func TestHostPort(t *testing.T) {
	tests := []struct {
		in, want string
		wantErr  bool
	}{
		{in: "pulsar://127.0.0.1:6650", want: "127.0.0.1:6650"},
		{in: "pulsar+ssl://broker", want: "broker:6651"},
		{in: "http://localhost", want: "localhost:80"},
		{in: "https://[::1]", want: "[::1]:443"},
		{in: "ftp://host", wantErr: true},
		{in: "://", wantErr: true},
		{in: "127.0.0.1:8000", wantErr: true},
	}
	for _, tt := range tests {
		got, err := hostPort(tt.in)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("hostPort(%q) = %q, %v; want %q, error %v", tt.in, got, err, tt.want, tt.wantErr)
		}
	}
}

func TestAWSConfig(t *testing.T) {
	// Two fakes stand for moto and DynamoDB Local; each records the X-Amz-Target of what it receives.
	var motoGot, dynamoGot []string
	fake := func(got *[]string, answer string) *httptest.Server {
		return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			*got = append(*got, r.Header.Get("X-Amz-Target"))
			w.Header().Set("Content-Type", "application/x-amz-json-1.0")
			_, _ = io.WriteString(w, answer)
		}))
	}
	moto := fake(&motoGot, `{"SecretList":[]}`)
	defer moto.Close()
	dynamo := fake(&dynamoGot, `{"TableNames":[]}`)
	defer dynamo.Close()
	setAll(t, map[string]string{"AWS_ENDPOINT_URL": moto.URL, "AWS_ENDPOINT_URL_DYNAMODB": dynamo.URL})
	// A profile the developer may have selected must not matter: shared config is not read.
	t.Setenv("AWS_PROFILE", "does-not-exist")

	ctx := context.Background()
	cfg, err := AWSConfig(ctx)
	if err != nil {
		t.Fatalf("AWSConfig(): %v", err)
	}
	creds, err := cfg.Credentials.Retrieve(ctx)
	if err != nil {
		t.Fatalf("retrieve credentials: %v", err)
	}
	if cfg.Region != "us-east-1" || creds.AccessKeyID != "test" || creds.SecretAccessKey != "test" {
		t.Errorf("AWSConfig() region %q, key %q", cfg.Region, creds.AccessKeyID)
	}
	if _, err := dynamodb.NewFromConfig(cfg).ListTables(ctx, &dynamodb.ListTablesInput{}); err != nil {
		t.Fatalf("DynamoDB ListTables: %v", err)
	}
	if _, err := secretsmanager.NewFromConfig(cfg).ListSecrets(ctx, &secretsmanager.ListSecretsInput{}); err != nil {
		t.Fatalf("Secrets Manager ListSecrets: %v", err)
	}
	if strings.Join(dynamoGot, ",") != "DynamoDB_20120810.ListTables" || strings.Join(motoGot, ",") != "secretsmanager.ListSecrets" {
		t.Errorf("DynamoDB endpoint got %q, moto endpoint got %q", dynamoGot, motoGot)
	}
}

func TestTopicPath(t *testing.T) {
	tests := []struct {
		in, want string
		wantErr  bool
	}{
		{in: "orders", want: "persistent/public/default/orders"},
		{in: "persistent://t/ns/orders", want: "persistent/t/ns/orders"},
		{in: "non-persistent://t/ns/x", want: "non-persistent/t/ns/x"},
		{in: "persistent://public/default/a b", want: "persistent/public/default/a%20b"},
		{in: "kafka://t/ns/x", wantErr: true},
		{in: "persistent://t/x", wantErr: true},
		{in: "persistent://t//x", wantErr: true},
	}
	for _, tt := range tests {
		got, err := topicPath(tt.in)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("topicPath(%q) = %q, %v; want %q, error %v", tt.in, got, err, tt.want, tt.wantErr)
		}
	}
}

func TestNameFromTest(t *testing.T) {
	tests := []struct{ in, want string }{
		{"TestFaults/kill_broker", "testfaults-kill-broker"},
		{"Test__X", "test-x"},
		{"/", "broker"},
		{strings.Repeat("a", 60), strings.Repeat("a", 41)},
		{strings.Repeat("a", 40) + "_b", strings.Repeat("a", 40)},
	}
	for _, tt := range tests {
		got := nameFromTest(tt.in)
		if got != tt.want || !validName.MatchString(got) {
			t.Errorf("nameFromTest(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// TestAdminRequests checks the requests the admin helpers send and how answers are read, against a fake.
func TestAdminRequests(t *testing.T) {
	type request struct{ method, path, body, auth string }
	var got []request
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		got = append(got, request{r.Method, r.URL.RequestURI(), string(body), r.Header.Get("Authorization")})
		switch {
		case strings.HasSuffix(r.URL.Path, "/missing/stats"):
			w.WriteHeader(http.StatusNotFound)
			_, _ = io.WriteString(w, `{"reason":"Topic not found"}`)
		case strings.HasSuffix(r.URL.Path, "/terminate"):
			_, _ = io.WriteString(w, `{"ledgerId":7,"entryId":3,"partitionIndex":-1}`)
		case strings.HasSuffix(r.URL.Path, "/stats"):
			_, _ = io.WriteString(w, `{"msgInCounter":5,"publishers":[{"producerName":"p"}],"subscriptions":{"s":{"type":"Shared","msgBacklog":2}}}`)
		default:
			w.WriteHeader(http.StatusNoContent)
		}
	}))
	defer srv.Close()
	ctx := context.Background()
	a := NewAdmin(srv.URL + "/")
	a.Token = "tok"

	if err := a.CreatePartitionedTopic(ctx, "orders", 3); err != nil {
		t.Fatalf("CreatePartitionedTopic: %v", err)
	}
	if err := a.CreatePartitionedTopic(ctx, "orders", 0); err == nil {
		t.Error("CreatePartitionedTopic with 0 partitions succeeded")
	}
	last, err := a.TerminateTopic(ctx, "persistent://t/ns/x")
	if err != nil || last != "7:3:-1" {
		t.Errorf("TerminateTopic = %q, %v", last, err)
	}
	stats, err := a.TopicStats(ctx, "x")
	if err != nil || stats.MsgInCounter != 5 || len(stats.Publishers) != 1 || stats.Subscriptions["s"].MsgBacklog != 2 {
		t.Errorf("TopicStats = %+v, %v", stats, err)
	}
	_, err = a.TopicStats(ctx, "missing")
	var adminErr *AdminError
	if !errors.As(err, &adminErr) || adminErr.Status != http.StatusNotFound || adminErr.Reason != "Topic not found" {
		t.Errorf("TopicStats(missing) error = %v, want an AdminError 404 Topic not found", err)
	}

	want := []request{
		{"PUT", "/admin/v2/persistent/public/default/orders/partitions", "3", "Bearer tok"},
		{"POST", "/admin/v2/persistent/t/ns/x/terminate", "", "Bearer tok"},
		{"GET", "/admin/v2/persistent/public/default/x/stats", "", "Bearer tok"},
		{"GET", "/admin/v2/persistent/public/default/missing/stats", "", "Bearer tok"},
	}
	if len(got) != len(want) {
		t.Fatalf("requests = %+v, want %+v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("request %d = %+v, want %+v", i, got[i], want[i])
		}
	}
}

func TestBrokerCacheDir(t *testing.T) {
	tests := []struct{ env, want string }{
		{env: "", want: "/repo/.cache"},
		{env: "/tmp/kp", want: "/tmp/kp"},
		{env: "build/cache", want: "/repo/build/cache"},
	}
	b := &Broker{name: "faults", script: "/repo/infra/local/pulsar.sh"}
	for _, tt := range tests {
		t.Setenv("KP_CACHE_DIR", tt.env)
		if got := b.cacheDir(); got != tt.want {
			t.Errorf("KP_CACHE_DIR=%q: cacheDir() = %q, want %q", tt.env, got, tt.want)
		}
	}
	t.Setenv("KP_CACHE_DIR", "")
	if got := b.LogPath(); got != "/repo/.cache/run/pulsar-faults.log" {
		t.Errorf("LogPath() = %q", got)
	}
}
