package sam

import (
	"fmt"
	"maps"
	"os"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/streambridge/kinesis-pulsar/internal/config"
	"github.com/streambridge/kinesis-pulsar/internal/sink"
)

// The sink (issue 16): PulsarToKinesisFunction and what surrounds it.
const (
	sinkFunctionID = "PulsarToKinesisFunction"
	sinkRoleID     = "PulsarToKinesisRole"
	sinkCondition  = "SinkOn"
)

// isSinkResource says whether a resource belongs to the sink (it exists under SinkOn).
func isSinkResource(tp *tmpl, id string) bool {
	c, _ := asMap(tp.resources[id])["Condition"].(string)
	return c == sinkCondition
}

func TestSinkFunctionShape(t *testing.T) {
	tp := loadTmpl(t)
	fn := tp.resource(t, sinkFunctionID)
	p := asMap(fn["Properties"])
	for _, tc := range []struct {
		what      string
		got, want any
	}{
		{"Condition", fn["Condition"], sinkCondition},
		{"Metadata.BuildMethod", at(fn, "Metadata", "BuildMethod"), "makefile"},
		{"Runtime", p["Runtime"], "provided.al2023"},
		{"Architectures", p["Architectures"], []any{"arm64"}},
		{"Handler", p["Handler"], "bootstrap"},
		{"CodeUri", p["CodeUri"], "."},
		{"LoggingConfig.LogFormat", at(p, "LoggingConfig", "LogFormat"), "JSON"},
		{"Role", p["Role"], map[string]any{"Fn::GetAtt": []any{sinkRoleID, "Arn"}}},
		{"Policies", p["Policies"], nil},
	} {
		if !reflect.DeepEqual(tc.got, tc.want) {
			t.Errorf("%s = %#v, want %#v", tc.what, tc.got, tc.want)
		}
	}
	timeout, ok := refName(p["Timeout"])
	if !ok || asMap(tp.params[timeout])["Default"] != 70 {
		t.Errorf("Timeout = %#v, want a parameter defaulting to 70 s", p["Timeout"])
	}

	var schedules []map[string]any
	for _, e := range asMap(p["Events"]) {
		if asMap(e)["Type"] == "ScheduleV2" {
			schedules = append(schedules, asMap(asMap(e)["Properties"]))
		}
	}
	if len(schedules) != 1 {
		t.Fatalf("%d ScheduleV2 events, want 1", len(schedules))
	}
	if expr, ok := refName(schedules[0]["ScheduleExpression"]); !ok || asMap(tp.params[expr])["Default"] != "rate(1 minute)" {
		t.Errorf("ScheduleExpression = %#v, want a parameter defaulting to rate(1 minute)", schedules[0]["ScheduleExpression"])
	}

	mk, err := os.ReadFile(makefilePath)
	if err != nil {
		t.Fatal(err)
	}
	target := regexp.MustCompile(`(?m)^build-` + sinkFunctionID + `:\n\t.*-o \$\(ARTIFACTS_DIR\)/bootstrap \./functions/pulsar-to-kinesis$`)
	if !target.Match(mk) {
		t.Errorf("Makefile has no build-%s target writing $(ARTIFACTS_DIR)/bootstrap", sinkFunctionID)
	}
}

func sinkEnvVars(t *testing.T, tp *tmpl) map[string]any {
	t.Helper()
	vars := asMap(at(tp.props(t, sinkFunctionID), "Environment", "Variables"))
	if vars == nil {
		t.Fatal("the sink has no Environment.Variables")
	}
	return vars
}

func TestSinkEnvironmentIsExactlyWhatConfigReads(t *testing.T) {
	tp := loadTmpl(t)
	vars := sinkEnvVars(t, tp)
	if got, want := slices.Sorted(maps.Keys(vars)), slices.Sorted(slices.Values(config.SinkNames())); !slices.Equal(got, want) {
		t.Errorf("the sink's variables\n%v\nconfig.SinkNames\n%v", got, want)
	}
}

// sinkRequired holds values for the variables the sink requires.
func sinkRequired() map[string]string {
	return map[string]string{
		config.VarServiceURL:       "pulsar://broker.example:6650",
		config.VarSinkTopics:       "persistent://public/default/out",
		config.VarKinesisStreamARN: "arn:aws:kinesis:us-east-1:123456789012:stream/target",
	}
}

func loadSinkEnv(env map[string]string) (config.SinkConfig, error) {
	return config.LoadSink(func(k string) string { return env[k] })
}

// paramBehind returns the parameter a variable comes from, seeing through !Join of a list parameter.
func paramBehind(tp *tmpl, v any) (string, map[string]any, bool) {
	if fn, arg, ok := intrinsic(v); ok && fn == "Fn::Join" {
		if l := asList(arg); len(l) == 2 {
			v = l[1]
		}
	}
	return paramOf(tp, v)
}

func TestSinkParameterDefaultsAreTheCodeDefaults(t *testing.T) {
	tp := loadTmpl(t)
	env := sinkRequired()
	for name, v := range sinkEnvVars(t, tp) {
		_, p, ok := paramBehind(tp, v)
		if !ok {
			continue
		}
		def, has := p["Default"]
		if !has {
			if _, required := env[name]; !required {
				t.Errorf("%s: its parameter has no default, but config does not require it", name)
			}
			continue
		}
		if _, required := env[name]; required && fmt.Sprint(def) == "" {
			continue // required with SinkEnabled: a rule says so
		}
		env[name] = fmt.Sprint(def)
	}
	fromTemplate, err := loadSinkEnv(env)
	if err != nil {
		t.Fatalf("config rejects the template's defaults: %v", err)
	}
	fromCode, err := loadSinkEnv(sinkRequired())
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(fromTemplate, fromCode) {
		t.Errorf("the template's defaults configure\n%+v\nthe code's defaults\n%+v", fromTemplate, fromCode)
	}
}

func TestSinkParameterValuesAreAcceptedByConfig(t *testing.T) {
	tp := loadTmpl(t)
	for name, v := range sinkEnvVars(t, tp) {
		param, p, ok := paramBehind(tp, v)
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
		for _, value := range values {
			env := sinkRequired()
			env[name] = value
			if _, err := loadSinkEnv(env); err != nil {
				t.Errorf("parameter %s allows %s=%s, config rejects it: %v", param, name, value, err)
			}
		}
	}
}

var wantSinkStatements = map[string]wantStatement{
	"WriteOwnLogs": {actions: []string{"logs:CreateLogStream", "logs:PutLogEvents"}, targets: []string{"SinkLogGroup"}},
	// What the sink calls, on the target stream only.
	"WriteTargetStream": {actions: []string{"kinesis:DescribeStreamSummary", "kinesis:ListShards", "kinesis:PutRecord",
		"kinesis:PutRecords"}, targets: []string{"SinkStreamArn"}},
	"EncryptTargetStream":      {actions: []string{"kms:GenerateDataKey"}, targets: []string{"SinkStreamKmsKeyArn"}, via: "kinesis"},
	"ReadPulsarCredentials":    {actions: []string{"secretsmanager:GetSecretValue"}, targets: []string{"PulsarAuthSecret", "StackPulsarAuthSecret"}},
	"DecryptPulsarCredentials": {actions: []string{"kms:Decrypt"}, targets: []string{"PulsarAuthSecretKmsKeyArn"}, via: "secretsmanager"},
	"ManageVpcInterfaces":      wantStatements["ManageVpcInterfaces"],
}

func TestSinkRoleIsLeastPrivilege(t *testing.T) {
	tp := loadTmpl(t)
	role := tp.props(t, sinkRoleID)
	if role["ManagedPolicyArns"] != nil {
		t.Errorf("%s has ManagedPolicyArns: AWS managed policies grant on *", sinkRoleID)
	}
	seen := map[string]bool{}
	for _, pol := range asList(role["Policies"]) {
		for _, sst := range statements(at(pol, "PolicyDocument", "Statement"), nil) {
			st := sst.body
			sid, _ := st["Sid"].(string)
			want, known := wantSinkStatements[sid]
			if !known {
				t.Errorf("statement %q is not in wantSinkStatements", sid)
				continue
			}
			seen[sid] = true
			switch {
			case want.via != "":
				if !reflect.DeepEqual(st["Condition"], viaService(want.via)) {
					t.Errorf("%s: Condition %#v, want kms:ViaService %s.${AWS::Region}.amazonaws.com", sid, st["Condition"], want.via)
				}
			case st["Condition"] != nil:
				t.Errorf("%s: unexpected Condition %#v", sid, st["Condition"])
			}
			var actions []string
			for _, a := range append(asList(st["Action"]), st["Action"]) {
				if s, ok := a.(string); ok {
					actions = append(actions, s)
				}
			}
			sort.Strings(actions)
			if st["Effect"] != "Allow" || !slices.Equal(actions, want.actions) {
				t.Errorf("%s: %v %v, want Allow %v", sid, st["Effect"], actions, want.actions)
			}
			names, problems := targets(tp, st["Resource"])
			for _, p := range problems {
				t.Errorf("%s: %s", sid, p)
			}
			sort.Strings(names)
			if want.star != "" {
				want.targets = []string{"*"}
			}
			if !slices.Equal(names, want.targets) {
				t.Errorf("%s: resources %v, want %v", sid, names, want.targets)
			}
		}
	}
	for sid := range wantSinkStatements {
		if !seen[sid] {
			t.Errorf("the sink's role has no statement %s", sid)
		}
	}
}

func TestSinkDashboardAndAlarmsReadWhatTheSinkEmits(t *testing.T) {
	tp := loadTmpl(t)
	ns, _ := refName(sinkEnvVars(t, tp)[config.VarMetricsNamespace])
	nsValue := placeholder(tp, ns)
	fnValue := placeholder(tp, sinkFunctionID)
	emitted := map[string]bool{}
	for _, m := range sink.MetricSchema.Metrics {
		emitted[m.Name] = true
	}
	shown := map[string]bool{}
	for i, w := range dashboardWidgetsOf(t, tp, "SinkDashboard") {
		for _, m := range widgetMetrics(t, tp, i, w) {
			if m.dims["FunctionName"] != fnValue || len(m.dims) != 1 {
				t.Errorf("%s: dimensions %v, want FunctionName of the sink", m.where, m.dims)
			}
			switch m.namespace {
			case nsValue:
				if !emitted[m.name] {
					t.Errorf("%s: %s is not in sink.MetricSchema.Metrics", m.where, m.name)
				}
				shown[m.name] = true
			case "AWS/Lambda":
			default:
				t.Errorf("%s: namespace %s", m.where, m.namespace)
			}
		}
	}
	for name := range emitted {
		if !shown[name] {
			t.Errorf("sink.MetricSchema.Metrics has %s, the sink's dashboard does not show it", name)
		}
	}

	alarmed := map[string]string{}
	for _, id := range tp.resourcesOfType("AWS::CloudWatch::Alarm") {
		if !isSinkResource(tp, id) {
			continue
		}
		p := tp.props(t, id)
		name, _ := p["MetricName"].(string)
		alarmed[name], _ = p["Statistic"].(string)
		dims := asList(p["Dimensions"])
		if len(dims) != 1 || !reflect.DeepEqual(asMap(dims[0])["Value"], map[string]any{"Ref": sinkFunctionID}) {
			t.Errorf("alarm %s: dimensions %v, want the sink's FunctionName", id, dims)
		}
		if n, ok := refName(p["Namespace"]); ok && (n != ns || !emitted[name]) {
			t.Errorf("alarm %s: %s in %s is not a metric the sink emits", id, name, n)
		}
	}
	want := map[string]string{"Errors": "Sum", "SinkPutErrors": "Sum", "SinkEndToEndLagMs": "Maximum"}
	if !reflect.DeepEqual(alarmed, want) {
		t.Errorf("sink alarms (metric: statistic) %v, want %v", alarmed, want)
	}
}

// TestSinkRefusesTheLoop: a rule stops the deployment where the sink would write to the stream the
// source reads while consuming the topic the source writes.
func TestSinkRefusesTheLoop(t *testing.T) {
	tp := loadTmpl(t)
	rule := fmt.Sprint(tp.rules["SinkRefusesTheLoop"])
	for _, name := range []string{"SinkEnabled", "SinkStreamArn", "StreamArn", "SinkTopics", "PulsarTopic", "Fn::Contains"} {
		if !strings.Contains(rule, name) {
			t.Errorf("rule SinkRefusesTheLoop does not test %s: %s", name, rule)
		}
	}
}

// TestReadmeSinkConfigurationTable: the README's sink table has a row for each sink variable, and each
// stated default is the one the code applies.
func TestReadmeSinkConfigurationTable(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(readme), "\n### Sink configuration\n")
	if !ok {
		t.Fatal(`README has no "### Sink configuration" section`)
	}
	section, _, _ = strings.Cut(section, "\n#")
	rows := map[string]string{}
	for _, m := range regexp.MustCompile("(?m)^\\| `([A-Z_]+)` \\| ([^|]+) \\|").FindAllStringSubmatch(section, -1) {
		rows[m[1]] = strings.TrimSpace(m[2])
	}
	shared := []string{config.VarServiceURL, config.VarAuthSecret, config.VarTLSAllowInsecure,
		config.VarTLSValidateHostname, config.VarMetricsNamespace, config.VarDeadlineMargin}
	for _, name := range config.SinkNames() {
		if _, ok := rows[name]; !ok && !slices.Contains(shared, name) {
			t.Errorf("the sink table has no row for %s", name)
		}
	}
	defaults, err := loadSinkEnv(sinkRequired())
	if err != nil {
		t.Fatal(err)
	}
	for name, def := range rows {
		if !slices.Contains(config.SinkNames(), name) {
			t.Errorf("the sink table documents %s, which the sink does not read", name)
			continue
		}
		if strings.HasPrefix(def, "required") || def == "unset" {
			continue
		}
		env := sinkRequired()
		env[name] = strings.Trim(def, "`")
		if got, err := loadSinkEnv(env); err != nil || !reflect.DeepEqual(got, defaults) {
			t.Errorf("the README says %s defaults to %s, but setting it to that changes the configuration (%v)", name, def, err)
		}
	}
}
