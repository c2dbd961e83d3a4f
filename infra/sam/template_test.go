package sam

import (
	"fmt"
	"maps"
	"os"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/streambridge/kinesis-pulsar/internal/audit"
	"github.com/streambridge/kinesis-pulsar/internal/config"
)

func TestFunctionRunsTheMakefileBuild(t *testing.T) {
	tp := loadTmpl(t)
	fn := tp.resource(t, functionID)
	p := asMap(fn["Properties"])
	for _, tc := range []struct {
		what string
		got  any
		want any
	}{
		{"Type", fn["Type"], "AWS::Serverless::Function"},
		{"Metadata.BuildMethod", at(fn, "Metadata", "BuildMethod"), "makefile"},
		{"Runtime", p["Runtime"], "provided.al2023"},
		{"Architectures", p["Architectures"], []any{"arm64"}},
		{"Handler", p["Handler"], "bootstrap"},
		{"CodeUri", p["CodeUri"], "."},
		{"LoggingConfig.LogFormat", at(p, "LoggingConfig", "LogFormat"), "JSON"},
	} {
		if !reflect.DeepEqual(tc.got, tc.want) {
			t.Errorf("%s = %#v, want %#v", tc.what, tc.got, tc.want)
		}
	}
	for _, key := range []string{"MemorySize", "Timeout"} {
		if name, ok := refName(p[key]); !ok || tp.kind(name) != "parameter" {
			t.Errorf("%s = %#v, want a Ref to a parameter", key, p[key])
		}
	}

	// sam build runs `make build-<LogicalId>` with ARTIFACTS_DIR; the target must exist and write there.
	mk, err := os.ReadFile(makefilePath)
	if err != nil {
		t.Fatal(err)
	}
	target := regexp.MustCompile(`(?m)^build-` + functionID + `:\n\t.*-o \$\(ARTIFACTS_DIR\)/bootstrap `)
	if !target.Match(mk) {
		t.Errorf("Makefile has no build-%s target writing $(ARTIFACTS_DIR)/bootstrap", functionID)
	}
}

// envVars returns the function's environment variables.
func envVars(t *testing.T, tp *tmpl) map[string]any {
	t.Helper()
	vars := asMap(at(tp.props(t, functionID), "Environment", "Variables"))
	if vars == nil {
		t.Fatal("the function has no Environment.Variables")
	}
	return vars
}

func TestEnvironmentIsExactlyWhatConfigReads(t *testing.T) {
	tp := loadTmpl(t)
	vars := envVars(t, tp)
	want := config.Names()
	got := slices.Sorted(maps.Keys(vars))
	for _, n := range want {
		if _, ok := vars[n]; !ok {
			t.Errorf("config reads %s, the template does not set it", n)
		}
	}
	for _, n := range got {
		if !slices.Contains(want, n) {
			t.Errorf("the template sets %s, which config does not read", n)
		}
	}

	// Each value comes from a parameter or a stack resource, or is "" (a feature turned off).
	var check func(name string, v any)
	check = func(name string, v any) {
		if c, yes, no, ok := ifArgs(v); ok {
			if tp.conds[c] == nil {
				t.Errorf("%s: Fn::If on unknown condition %s", name, c)
			}
			check(name, yes)
			check(name, no)
			return
		}
		if s, ok := v.(string); ok && s == "" {
			return
		}
		ref, ok := refName(v)
		if !ok || (tp.kind(ref) != "parameter" && tp.kind(ref) != "resource") {
			t.Errorf("%s = %#v, want a Ref to a parameter or resource (or an Fn::If of those)", name, v)
		}
	}
	for name, v := range vars {
		check(name, v)
	}
}

// paramOf returns the parameter an environment variable is set from directly, if any.
func paramOf(tp *tmpl, v any) (string, map[string]any, bool) {
	name, ok := refName(v)
	if !ok || tp.kind(name) != "parameter" {
		return "", nil, false
	}
	return name, asMap(tp.params[name]), true
}

// requiredEnv holds values for the variables config requires and the template leaves to the user
// (parameters without a default), plus a table so AUDIT_REQUIRED=true is valid.
func requiredEnv() map[string]string {
	return map[string]string{
		config.VarServiceURL: "pulsar://broker.example:6650",
		config.VarTopic:      "persistent://public/default/{stream}",
	}
}

func loadEnv(env map[string]string) (config.Config, error) {
	return config.Load(func(k string) string { return env[k] })
}

func TestParameterDefaultsAreTheCodeDefaults(t *testing.T) {
	tp := loadTmpl(t)
	env := requiredEnv()
	for name, v := range envVars(t, tp) {
		param, p, ok := paramOf(tp, v)
		if !ok {
			continue // set from a resource: checked by the resource's own test
		}
		def, has := p["Default"]
		if !has {
			if _, required := env[name]; !required {
				t.Errorf("%s: parameter %s has no default, but config does not require %s", name, param, name)
			}
			continue
		}
		env[name] = fmt.Sprint(def)
	}
	fromTemplate, err := loadEnv(env)
	if err != nil {
		t.Fatalf("config rejects the template's defaults: %v", err)
	}
	fromCode, err := loadEnv(requiredEnv())
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(fromTemplate, fromCode) {
		t.Errorf("the template's defaults configure\n%+v\nthe code's defaults\n%+v", fromTemplate, fromCode)
	}
}

func TestParameterValuesAreAcceptedByConfig(t *testing.T) {
	tp := loadTmpl(t)
	for name, v := range envVars(t, tp) {
		param, p, ok := paramOf(tp, v)
		if !ok {
			continue
		}
		var values []string
		for _, a := range asList(p["AllowedValues"]) {
			values = append(values, fmt.Sprint(a))
		}
		for _, key := range []string{"MinValue", "MaxValue"} {
			if b, ok := p[key]; ok {
				values = append(values, fmt.Sprint(b))
			}
		}
		if p["Type"] == "Number" && (p["MinValue"] == nil || p["MaxValue"] == nil) {
			t.Errorf("%s: Number parameter %s needs MinValue and MaxValue within config's range", name, param)
		}
		for _, value := range values {
			env := requiredEnv()
			env[name] = value
			env[config.VarAuditTable] = "audit-table"
			if _, err := loadEnv(env); err != nil {
				t.Errorf("parameter %s allows %s=%s, config rejects it: %v", param, name, value, err)
			}
		}
	}
}

func TestLogLevelKeepsMetrics(t *testing.T) {
	// The EMF documents carry no "level", so Lambda files them as INFO: an application log level above
	// INFO would drop every metric, and the alarms on them would go quiet.
	tp := loadTmpl(t)
	level := at(tp.props(t, functionID), "LoggingConfig", "ApplicationLogLevel")
	param, ok := refName(level)
	if !ok || tp.params[param] == nil {
		t.Fatalf("ApplicationLogLevel = %#v, want a Ref to a parameter", level)
	}
	allowed := asList(asMap(tp.params[param])["AllowedValues"])
	if len(allowed) == 0 {
		t.Fatalf("parameter %s has no AllowedValues", param)
	}
	for _, a := range allowed {
		if !slices.Contains([]any{"TRACE", "DEBUG", "INFO"}, a) {
			t.Errorf("parameter %s allows %v, which would filter out the EMF metrics", param, a)
		}
	}
}

func TestEveryNameResolvesAndEveryParameterAndConditionIsUsed(t *testing.T) {
	tp := loadTmpl(t)
	refs, conds := tp.usage()
	used := map[string]bool{}
	for _, r := range refs {
		used[r.name] = true
		if tp.kind(r.name) == "" {
			t.Errorf("%s names %s, which is no parameter, resource or pseudo parameter", r.where, r.name)
		}
	}
	for name := range tp.params {
		if !used[name] {
			t.Errorf("parameter %s is never used", name)
		}
	}
	for name := range tp.conds {
		if !conds[name] {
			t.Errorf("condition %s is never used", name)
		}
	}
	for name := range conds {
		if tp.conds[name] == nil {
			t.Errorf("condition %s is used but not defined", name)
		}
	}
}

func TestConditionalResourcesAreUsedUnderTheirCondition(t *testing.T) {
	// A Ref or GetAtt to a resource that may not exist fails the deployment: it must sit where the
	// resource's condition holds.
	tp := loadTmpl(t)
	refs, _ := tp.usage()
	for _, r := range refs {
		cond, ok := asMap(tp.resources[r.name])["Condition"].(string)
		if !ok {
			continue
		}
		var holds []string
		for _, a := range r.active {
			if !strings.HasPrefix(a, "!") {
				holds = append(holds, tp.implied(a)...)
			}
		}
		if !slices.Contains(holds, cond) {
			t.Errorf("%s names %s (Condition %s) where that condition is not known to hold (%v)", r.where, r.name, cond, r.active)
		}
	}
}

// wantStatement is what one statement of the function's role may grant.
type wantStatement struct {
	actions []string
	targets []string // the parameters and resources its Resource may name
	star    string   // why Resource is "*", when AWS requires it
}

var wantStatements = map[string]wantStatement{
	"WriteOwnLogs": {actions: []string{"logs:CreateLogStream", "logs:PutLogEvents"}, targets: []string{"FunctionLogGroup"}},
	// What the mapping calls to poll, per the Lambda developer guide; no ListStreams (account-wide).
	"ReadStream": {actions: []string{"kinesis:DescribeStream", "kinesis:DescribeStreamSummary", "kinesis:GetRecords",
		"kinesis:GetShardIterator", "kinesis:ListShards"}, targets: []string{"Stream", "StreamArn"}},
	"ReadThroughConsumer": {actions: []string{"kinesis:DescribeStreamConsumer", "kinesis:SubscribeToShard"},
		targets: []string{"StreamConsumer"}},
	"DecryptStream":         {actions: []string{"kms:Decrypt"}, targets: []string{"StreamKmsKeyArn"}},
	"SendFailedBatches":     {actions: []string{"sqs:SendMessage"}, targets: []string{"FailureQueue"}},
	"WriteAudit":            {actions: []string{"dynamodb:PutItem", "dynamodb:UpdateItem"}, targets: []string{"AuditTable"}},
	"ReadPulsarCredentials": {actions: []string{"secretsmanager:GetSecretValue"}, targets: []string{"PulsarAuthSecret", "StackPulsarAuthSecret"}},
	"ManageVpcInterfaces": {actions: []string{"ec2:AssignPrivateIpAddresses", "ec2:CreateNetworkInterface",
		"ec2:DeleteNetworkInterface", "ec2:DescribeNetworkInterfaces", "ec2:DescribeSubnets", "ec2:UnassignPrivateIpAddresses"},
		star: "Lambda creates and deletes the function's network interfaces in the given subnets; the Describe " +
			"actions support no resource ARN, and these are exactly AWSLambdaVPCAccessExecutionRole's"},
}

// statements unwraps the Fn::If around statements, dropping AWS::NoValue branches.
func statements(v any) []map[string]any {
	if _, yes, no, ok := ifArgs(v); ok {
		return append(statements(yes), statements(no)...)
	}
	if isNoValue(v) {
		return nil
	}
	if l, ok := v.([]any); ok {
		var out []map[string]any
		for _, e := range l {
			out = append(out, statements(e)...)
		}
		return out
	}
	return []map[string]any{asMap(v)}
}

// targets returns the names a statement's Resource refers to; "*" for a wildcard; an error text for
// anything else (a literal ARN, an Fn::Sub pattern).
func targets(tp *tmpl, v any) (names []string, problems []string) {
	switch x := v.(type) {
	case string:
		if x == "*" {
			return []string{"*"}, nil
		}
		return nil, []string{fmt.Sprintf("literal resource %q", x)}
	case []any:
		for _, e := range x {
			n, p := targets(tp, e)
			names, problems = append(names, n...), append(problems, p...)
		}
		return names, problems
	}
	if _, yes, no, ok := ifArgs(v); ok {
		n1, p1 := targets(tp, yes)
		n2, p2 := targets(tp, no)
		return append(n1, n2...), append(p1, p2...)
	}
	if isNoValue(v) {
		return nil, nil
	}
	if name, ok := refName(v); ok && (tp.kind(name) == "parameter" || tp.kind(name) == "resource") {
		return []string{name}, nil
	}
	if res, _, ok := getAtt(v); ok && tp.kind(res) == "resource" {
		return []string{res}, nil
	}
	return nil, []string{fmt.Sprintf("resource %#v is not a Ref or GetAtt of the stack's own", v)}
}

func TestPoliciesNameOnlyTheStacksOwnResources(t *testing.T) {
	tp := loadTmpl(t)
	fn := tp.props(t, functionID)
	// SAM's generated role would add AWSLambdaKinesisExecutionRole (Kinesis on *) and
	// AWSLambdaBasicExecutionRole (logs on *): the function must bring its own role and no policies.
	if res, attr, ok := getAtt(fn["Role"]); !ok || res != "KinesisToPulsarRole" || attr != "Arn" {
		t.Errorf("function Role = %#v, want !GetAtt KinesisToPulsarRole.Arn", fn["Role"])
	}
	if fn["Policies"] != nil {
		t.Error("function has Policies: SAM would attach them to a generated role")
	}
	for _, typ := range []string{"AWS::IAM::Policy", "AWS::IAM::ManagedPolicy", "AWS::IAM::User", "AWS::IAM::Group"} {
		if ids := tp.resourcesOfType(typ); len(ids) > 0 {
			t.Errorf("unexpected %s resources %v: keep every grant in KinesisToPulsarRole", typ, ids)
		}
	}
	if roles := tp.resourcesOfType("AWS::IAM::Role"); !slices.Equal(roles, []string{"KinesisToPulsarRole"}) {
		t.Errorf("roles = %v, want only KinesisToPulsarRole", roles)
	}
	role := tp.props(t, "KinesisToPulsarRole")
	if role["ManagedPolicyArns"] != nil {
		t.Error("KinesisToPulsarRole has ManagedPolicyArns: AWS managed policies grant on *")
	}

	seen := map[string]bool{}
	for _, pol := range asList(role["Policies"]) {
		for _, st := range statements(at(pol, "PolicyDocument", "Statement")) {
			sid, _ := st["Sid"].(string)
			want, known := wantStatements[sid]
			if !known {
				t.Errorf("statement %q is not in wantStatements: add it with its justification", sid)
				continue
			}
			seen[sid] = true
			if st["Effect"] != "Allow" || st["NotAction"] != nil || st["NotResource"] != nil {
				t.Errorf("%s: want a plain Allow of Action on Resource", sid)
			}
			var actions []string
			for _, a := range append(asList(st["Action"]), st["Action"]) {
				if s, ok := a.(string); ok {
					actions = append(actions, s)
				}
			}
			sort.Strings(actions)
			if !slices.Equal(actions, want.actions) {
				t.Errorf("%s: actions %v, want %v", sid, actions, want.actions)
			}
			names, problems := targets(tp, st["Resource"])
			for _, p := range problems {
				t.Errorf("%s: %s", sid, p)
			}
			switch {
			case want.star != "":
				if !slices.Equal(names, []string{"*"}) {
					t.Errorf("%s: resources %v, want exactly \"*\"", sid, names)
				}
			case slices.Contains(names, "*"):
				t.Errorf("%s: resource \"*\" is not a listed exception", sid)
			default:
				sort.Strings(names)
				if !slices.Equal(names, want.targets) {
					t.Errorf("%s: resources %v, want %v", sid, names, want.targets)
				}
			}
		}
	}
	for sid := range wantStatements {
		if !seen[sid] {
			t.Errorf("wantStatements lists %s, the role has no such statement", sid)
		}
	}
}

func TestEventSourceReportsItemFailuresAndKeepsFailedBatches(t *testing.T) {
	tp := loadTmpl(t)
	events := asMap(tp.props(t, functionID)["Events"])
	var kinesis []map[string]any
	for _, e := range events {
		if asMap(e)["Type"] == "Kinesis" {
			kinesis = append(kinesis, asMap(asMap(e)["Properties"]))
		}
	}
	if len(kinesis) != 1 {
		t.Fatalf("%d Kinesis events, want 1", len(kinesis))
	}
	es := kinesis[0]
	if got := es["FunctionResponseTypes"]; !reflect.DeepEqual(got, []any{"ReportBatchItemFailures"}) {
		t.Errorf("FunctionResponseTypes = %#v, want [ReportBatchItemFailures]", got)
	}
	if es["StartingPosition"] == nil {
		t.Error("no StartingPosition: the SAM translator requires it")
	}
	// StartingPositionTimestamp only with AT_TIMESTAMP: an Fn::If on a condition testing exactly that.
	if c, _, no, ok := ifArgs(es["StartingPositionTimestamp"]); !ok || !isNoValue(no) {
		t.Errorf("StartingPositionTimestamp = %#v, want !If [<AT_TIMESTAMP condition>, ..., !Ref AWS::NoValue]", es["StartingPositionTimestamp"])
	} else {
		eq := asList(at(tp.conds[c], "Fn::Equals"))
		ref, _ := refName(eq[0])
		if len(eq) != 2 || !reflect.DeepEqual(es["StartingPosition"], map[string]any{"Ref": ref}) || eq[1] != "AT_TIMESTAMP" {
			t.Errorf("condition %s = %#v, want Equals [StartingPosition's parameter, AT_TIMESTAMP]", c, tp.conds[c])
		}
	}
	dest := at(es, "DestinationConfig", "OnFailure", "Destination")
	res, attr, ok := getAtt(dest)
	if !ok || attr != "Arn" || asMap(tp.resources[res])["Type"] != "AWS::SQS::Queue" {
		t.Fatalf("DestinationConfig.OnFailure.Destination = %#v, want the ARN of a queue of the stack", dest)
	}
	q := tp.props(t, res)
	if q["SqsManagedSseEnabled"] != true && q["KmsMasterKeyId"] == nil {
		t.Errorf("queue %s is not encrypted (SqsManagedSseEnabled or KmsMasterKeyId)", res)
	}
	// With EFO on, the mapping reads through the consumer, which reads the same stream.
	stream := es["Stream"]
	c, yes, no, ok := ifArgs(stream)
	if !ok {
		t.Fatalf("Stream = %#v, want !If [<EFO condition>, consumer ARN, stream ARN]", stream)
	}
	if r, a, ok := getAtt(yes); !ok || asMap(tp.resources[r])["Type"] != "AWS::Kinesis::StreamConsumer" || a != "ConsumerARN" {
		t.Errorf("Stream with %s = %#v, want the consumer's ConsumerARN", c, yes)
	} else if consumerStream := tp.props(t, r)["StreamARN"]; !reflect.DeepEqual(consumerStream, no) {
		t.Errorf("the consumer reads %#v, the mapping otherwise %#v", consumerStream, no)
	}
}

func TestAuditTableMatchesTheCode(t *testing.T) {
	tp := loadTmpl(t)
	vars := envVars(t, tp)
	c, yes, no, ok := ifArgs(vars[config.VarAuditTable])
	table, isRef := refName(yes)
	if !ok || !isRef || no != "" {
		t.Fatalf("AUDIT_TABLE_NAME = %#v, want !If [<audit on>, !Ref <table>, \"\"]", vars[config.VarAuditTable])
	}
	r := tp.resource(t, table)
	if r["Type"] != "AWS::DynamoDB::Table" || r["Condition"] != c {
		t.Fatalf("%s: Type %v, Condition %v; want an AWS::DynamoDB::Table under %s", table, r["Type"], r["Condition"], c)
	}
	p := asMap(r["Properties"])
	want := map[string]any{
		"BillingMode": "PAY_PER_REQUEST",
		"AttributeDefinitions": []any{
			map[string]any{"AttributeName": audit.AttrPK, "AttributeType": "S"},
			map[string]any{"AttributeName": audit.AttrSK, "AttributeType": "S"},
		},
		"KeySchema": []any{
			map[string]any{"AttributeName": audit.AttrPK, "KeyType": "HASH"},
			map[string]any{"AttributeName": audit.AttrSK, "KeyType": "RANGE"},
		},
		"TimeToLiveSpecification":          map[string]any{"AttributeName": audit.AttrExpiresAt, "Enabled": true},
		"PointInTimeRecoverySpecification": map[string]any{"PointInTimeRecoveryEnabled": true},
	}
	for k, w := range want {
		if !reflect.DeepEqual(p[k], w) {
			t.Errorf("%s.%s = %#v, want %#v", table, k, p[k], w)
		}
	}
}

// placeholder stands for ${name} in a DashboardBody. A Number parameter becomes a number, since it may
// stand unquoted in the JSON.
func placeholder(tp *tmpl, name string) string {
	if asMap(tp.params[name])["Type"] == "Number" {
		return "1"
	}
	return "SUB(" + name + ")"
}

type widget struct {
	Type       string         `json:"type"`
	X          *int           `json:"x"`
	Y          *int           `json:"y"`
	Width      *int           `json:"width"`
	Height     *int           `json:"height"`
	Properties map[string]any `json:"properties"`
}

// metricRef is one metric a dashboard or alarm reads.
type metricRef struct {
	where     string
	namespace string
	name      string
	dims      map[string]string
	stat      string
}

// Allowed dimension values outside our namespace: AWS/Lambda metrics of the function, the queue's depth.
var awsMetricDims = map[string]map[string]string{
	"AWS/Lambda": {"FunctionName": "function"},
	"AWS/SQS":    {"QueueName": "queue"},
}

func TestDashboardAndAlarmsReadWhatTheCodeEmits(t *testing.T) {
	tp := loadTmpl(t)
	ns, ok := refName(envVars(t, tp)[config.VarMetricsNamespace])
	if !ok || tp.params[ns] == nil {
		t.Fatalf("METRICS_NAMESPACE is not set from a parameter")
	}
	if def := asMap(tp.params[ns])["Default"]; def != config.DefaultMetricsNamespace {
		t.Errorf("parameter %s defaults to %v, the code to %s", ns, def, config.DefaultMetricsNamespace)
	}
	fnName := map[string]any{"Ref": functionID} // the deployed name, which lambdacontext.FunctionName reports
	queue := map[string]any{"Fn::GetAtt": []any{"FailureQueue", "QueueName"}}

	widgets := dashboardWidgets(t, tp)
	var refs []metricRef
	for i, w := range widgets {
		refs = append(refs, widgetMetrics(t, tp, i, w)...)
	}
	// Placeholders name the template values the dashboard's dimensions must carry.
	subValue := map[string]string{"function": placeholder(tp, functionID), "queue": "SUB(FailureQueue.QueueName)"}
	nsValue := placeholder(tp, ns)
	for _, a := range tp.resourcesOfType("AWS::CloudWatch::Alarm") {
		refs = append(refs, alarmMetric(t, tp, a, ns, nsValue, fnName, queue))
	}

	onDashboard := map[string]bool{}
	stats := map[string][]string{}
	for _, m := range refs {
		if strings.HasPrefix(m.where, "widget") {
			onDashboard[m.namespace+" "+m.name] = true
			stats[m.name] = append(stats[m.name], m.stat)
		}
		if m.namespace != nsValue {
			want, ok := awsMetricDims[m.namespace]
			if !ok {
				t.Errorf("%s: namespace %q is neither AWS/Lambda, AWS/SQS nor the %s parameter", m.where, m.namespace, ns)
				continue
			}
			if len(m.dims) != len(want) {
				t.Errorf("%s: %s %s dimensions %v, want %v", m.where, m.namespace, m.name, m.dims, want)
			}
			for k, v := range want {
				if m.dims[k] != subValue[v] {
					t.Errorf("%s: %s %s dimension %s = %q, want %q", m.where, m.namespace, m.name, k, m.dims[k], subValue[v])
				}
			}
			continue
		}
		// Our metrics: a name the code emits, with one of its dimension sets, for this function.
		if !slices.ContainsFunc(metricsMetrics(), func(n string) bool { return n == m.name }) {
			t.Errorf("%s: metric %s is not in relay.MetricSchema.Metrics", m.where, m.name)
		}
		keys := slices.Sorted(maps.Keys(m.dims))
		if !slices.ContainsFunc(dimensionSets(), func(set []string) bool { return slices.Equal(set, keys) }) {
			t.Errorf("%s: %s dimensions %v are no dimension set of relay.MetricSchema.DimensionSets %v", m.where, m.name, keys, dimensionSets())
		}
		if m.dims["FunctionName"] != subValue["function"] {
			t.Errorf("%s: %s FunctionName = %q, want the function's name %q", m.where, m.name, m.dims["FunctionName"], subValue["function"])
		}
	}
	for _, name := range metricsMetrics() {
		if !onDashboard[nsValue+" "+name] {
			t.Errorf("relay.MetricSchema.Metrics has %s, the dashboard does not show it", name)
		}
	}
	for _, name := range []string{"IteratorAge", "Invocations", "Errors", "Throttles", "Duration", "ConcurrentExecutions"} {
		if !onDashboard["AWS/Lambda "+name] {
			t.Errorf("the dashboard does not show AWS/Lambda %s", name)
		}
	}
	for _, s := range []string{"p50", "p99"} {
		if !slices.Contains(stats["PublishLatencyMs"], s) {
			t.Errorf("the dashboard does not show PublishLatencyMs %s", s)
		}
	}
}

// dashboardWidgets parses the one dashboard's body, with ${...} replaced by placeholders, and checks
// the structure CloudWatch expects.
func dashboardWidgets(t *testing.T, tp *tmpl) []widget {
	t.Helper()
	ids := tp.resourcesOfType("AWS::CloudWatch::Dashboard")
	if len(ids) != 1 {
		t.Fatalf("%d dashboards, want 1", len(ids))
	}
	body, locals, ok := subString(tp.props(t, ids[0])["DashboardBody"])
	if !ok || locals != nil {
		t.Fatalf("DashboardBody is not an Fn::Sub of a string")
	}
	var bad []string
	body = subVar.ReplaceAllStringFunc(body, func(m string) string {
		name := m[2 : len(m)-1]
		base, _, _ := strings.Cut(name, ".")
		if tp.kind(base) == "" {
			bad = append(bad, name)
		}
		if strings.Contains(name, ".") {
			return "SUB(" + name + ")"
		}
		return placeholder(tp, name)
	})
	if len(bad) > 0 {
		t.Errorf("DashboardBody names unknown %v", bad)
	}
	var doc struct {
		Widgets []widget `json:"widgets"`
	}
	if err := jsonStrict([]byte(body), &doc); err != nil {
		t.Fatalf("DashboardBody is not valid JSON: %v", err)
	}
	if len(doc.Widgets) == 0 || len(doc.Widgets) > 500 {
		t.Fatalf("%d widgets, want 1 to 500", len(doc.Widgets))
	}
	for i, w := range doc.Widgets {
		if w.X == nil || w.Y == nil || w.Width == nil || w.Height == nil || w.Properties == nil {
			t.Errorf("widget %d lacks x, y, width, height or properties", i)
			continue
		}
		if *w.X < 0 || *w.Width < 1 || *w.X+*w.Width > 24 || *w.Y < 0 || *w.Height < 1 || *w.Height > 1000 {
			t.Errorf("widget %d at x=%d width=%d y=%d height=%d is outside the 24-column grid", i, *w.X, *w.Width, *w.Y, *w.Height)
		}
		for j := range i {
			o := doc.Widgets[j]
			if o.X != nil && o.Y != nil && o.Width != nil && o.Height != nil &&
				*w.X < *o.X+*o.Width && *o.X < *w.X+*w.Width && *w.Y < *o.Y+*o.Height && *o.Y < *w.Y+*w.Height {
				t.Errorf("widgets %d and %d overlap", j, i)
			}
		}
	}
	return doc.Widgets
}

func widgetMetrics(t *testing.T, tp *tmpl, i int, w widget) []metricRef {
	t.Helper()
	where := fmt.Sprintf("widget %d (%v)", i, w.Properties["title"])
	switch w.Type {
	case "alarm":
		alarms := asList(w.Properties["alarms"])
		if len(alarms) == 0 {
			t.Errorf("%s: no alarms", where)
		}
		for _, a := range alarms {
			s, _ := a.(string)
			name := strings.TrimSuffix(strings.TrimPrefix(s, "SUB("), ".Arn)")
			if asMap(tp.resources[name])["Type"] != "AWS::CloudWatch::Alarm" {
				t.Errorf("%s: %q is not the ARN of an alarm of the stack", where, s)
			}
		}
		return nil
	case "text":
		if _, ok := w.Properties["markdown"].(string); !ok {
			t.Errorf("%s: text widget without markdown", where)
		}
		return nil
	case "metric":
	default:
		t.Errorf("%s: unexpected widget type %q", where, w.Type)
		return nil
	}
	if w.Properties["region"] != "SUB(AWS::Region)" {
		t.Errorf("%s: region = %v, want ${AWS::Region}", where, w.Properties["region"])
	}
	rows := asList(w.Properties["metrics"])
	if len(rows) == 0 {
		t.Errorf("%s: no metrics", where)
	}
	defaultStat, _ := w.Properties["stat"].(string)
	var out []metricRef
	var prev []any
	for r, row := range rows {
		cells := asList(row)
		m := metricRef{where: fmt.Sprintf("%s metric %d", where, r), dims: map[string]string{}, stat: defaultStat}
		if n := len(cells); n > 0 {
			if opts, ok := cells[n-1].(map[string]any); ok {
				if s, ok := opts["stat"].(string); ok {
					m.stat = s
				}
				cells = cells[:n-1]
			}
		}
		// CloudWatch's shorthand: "." repeats the previous row's cell.
		for c := range cells {
			if cells[c] == "." && c < len(prev) {
				cells[c] = prev[c]
			}
		}
		prev = cells
		if len(cells) < 2 || len(cells)%2 != 0 {
			t.Errorf("%s: row %v is not [namespace, name, dim, value, ...]", m.where, cells)
			continue
		}
		strs := make([]string, len(cells))
		for c, v := range cells {
			s, ok := v.(string)
			if !ok {
				t.Errorf("%s: cell %d is %#v, not a string", m.where, c, v)
			}
			strs[c] = s
		}
		m.namespace, m.name = strs[0], strs[1]
		for d := 2; d < len(strs); d += 2 {
			m.dims[strs[d]] = strs[d+1]
		}
		if m.stat == "" {
			t.Errorf("%s: no stat", m.where)
		}
		out = append(out, m)
	}
	return out
}

// alarmMetric checks an alarm's shape and returns its metric, with template values turned into the
// dashboard's placeholders so both compare alike.
func alarmMetric(t *testing.T, tp *tmpl, id, ns, nsValue string, fnName, queue map[string]any) metricRef {
	t.Helper()
	p := tp.props(t, id)
	m := metricRef{where: "alarm " + id, dims: map[string]string{}}
	m.name, _ = p["MetricName"].(string)
	m.stat, _ = p["Statistic"].(string)
	switch v := p["Namespace"].(type) {
	case string:
		m.namespace = v
	default:
		if name, ok := refName(v); ok && name == ns {
			m.namespace = nsValue
		} else {
			t.Errorf("%s: Namespace %#v is neither an AWS namespace nor the %s parameter", m.where, v, ns)
		}
	}
	for _, d := range asList(p["Dimensions"]) {
		k, _ := asMap(d)["Name"].(string)
		switch v := asMap(d)["Value"]; {
		case reflect.DeepEqual(v, fnName):
			m.dims[k] = placeholder(tp, functionID)
		case reflect.DeepEqual(v, queue):
			m.dims[k] = "SUB(FailureQueue.QueueName)"
		default:
			m.dims[k] = fmt.Sprintf("%v", v)
		}
	}
	for _, key := range []string{"AlarmActions", "OKActions"} {
		if p[key] == nil {
			continue
		}
		c, yes, no, ok := ifArgs(p[key])
		var topic string
		if l := asList(yes); len(l) == 1 {
			topic, _ = refName(l[0])
		}
		if !ok || !isNoValue(no) || tp.params[topic] == nil {
			t.Errorf("%s: %s = %#v, want !If [<topic given>, [!Ref <topic parameter>], !Ref AWS::NoValue]", m.where, key, p[key])
			continue
		}
		if !strings.Contains(fmt.Sprint(tp.conds[c]), "map[Ref:"+topic+"]") {
			t.Errorf("%s: %s under condition %s, which does not test %s", m.where, key, c, topic)
		}
	}
	return m
}

func TestAlarmsCoverTheFailureModes(t *testing.T) {
	tp := loadTmpl(t)
	byMetric := map[string]map[string]any{}
	for _, id := range tp.resourcesOfType("AWS::CloudWatch::Alarm") {
		p := tp.props(t, id)
		name, _ := p["MetricName"].(string)
		byMetric[name] = p
	}
	for _, tc := range []struct {
		metric, stat, comparison string
		threshold                any // a literal, or "param" for a Ref to a parameter
	}{
		{"IteratorAge", "Maximum", "GreaterThanThreshold", "param"},
		{"RecordsFailed", "Sum", "GreaterThanThreshold", 0},
		{"ApproximateNumberOfMessagesVisible", "Maximum", "GreaterThanThreshold", 0},
		{"Errors", "Sum", "GreaterThanThreshold", 0},
	} {
		p := byMetric[tc.metric]
		if p == nil {
			t.Errorf("no alarm on %s", tc.metric)
			continue
		}
		if p["Statistic"] != tc.stat || p["ComparisonOperator"] != tc.comparison {
			t.Errorf("%s alarm: %v %v, want %s %s", tc.metric, p["Statistic"], p["ComparisonOperator"], tc.stat, tc.comparison)
		}
		if tc.threshold == "param" {
			if name, ok := refName(p["Threshold"]); !ok || tp.params[name] == nil {
				t.Errorf("%s alarm: Threshold %#v, want a Ref to a parameter", tc.metric, p["Threshold"])
			}
		} else if !reflect.DeepEqual(p["Threshold"], tc.threshold) {
			t.Errorf("%s alarm: Threshold %#v, want %v", tc.metric, p["Threshold"], tc.threshold)
		}
	}
	// "Sustained": every one of N consecutive periods must breach.
	if p := byMetric["RecordsFailed"]; p != nil {
		name, ok := refName(p["EvaluationPeriods"])
		if !ok || tp.params[name] == nil || !reflect.DeepEqual(p["EvaluationPeriods"], p["DatapointsToAlarm"]) {
			t.Errorf("RecordsFailed alarm: EvaluationPeriods %#v and DatapointsToAlarm %#v, want the same parameter", p["EvaluationPeriods"], p["DatapointsToAlarm"])
		}
	}
}

func TestOutputs(t *testing.T) {
	tp := loadTmpl(t)
	for _, tc := range []struct{ output, condition string }{
		{"FunctionArn", ""}, {"AuditTableName", "AuditOn"}, {"FailureQueueUrl", ""}, {"DashboardUrl", ""},
		{"KinesisStreamArn", ""}, {"StreamConsumerArn", "UseEnhancedFanOut"},
	} {
		o := asMap(tp.outputs[tc.output])
		if o == nil {
			t.Errorf("no output %s", tc.output)
			continue
		}
		if c, _ := o["Condition"].(string); c != tc.condition {
			t.Errorf("output %s: Condition %q, want %q", tc.output, c, tc.condition)
		}
	}
}

// jsonStrict decodes JSON, rejecting trailing data.
func jsonStrict(data []byte, v any) error {
	dec := newJSONDecoder(data)
	if err := dec.Decode(v); err != nil {
		return err
	}
	if dec.More() {
		return fmt.Errorf("trailing data after the JSON document")
	}
	return nil
}

// parseOverride splits "Key=Value".
func parseOverride(s string) (string, string, error) {
	k, v, ok := strings.Cut(s, "=")
	if !ok || k == "" {
		return "", "", fmt.Errorf("%q is not Key=Value", s)
	}
	if uq, err := strconv.Unquote(v); err == nil {
		v = uq
	}
	return k, v, nil
}
