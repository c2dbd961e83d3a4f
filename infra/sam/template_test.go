package sam

import (
	"errors"
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
	via     string   // a KMS grant: the service (kinesis, secretsmanager) its kms:ViaService condition names
	// when: the condition the statement sits under ("!C" for the false branch of an Fn::If on C); empty
	// for a statement every stack has.
	when string
}

var wantStatements = map[string]wantStatement{
	"WriteOwnLogs": {actions: []string{"logs:CreateLogStream", "logs:PutLogEvents"}, targets: []string{"FunctionLogGroup"}},
	// What the mapping calls to poll, per the Lambda developer guide; no ListStreams (account-wide).
	"DescribeStream": {actions: []string{"kinesis:DescribeStream", "kinesis:DescribeStreamSummary", "kinesis:ListShards"},
		targets: []string{"Stream", "StreamArn"}},
	// Shared-throughput polling only: under enhanced fan-out the mapping subscribes instead.
	"PollStream": {actions: []string{"kinesis:GetRecords", "kinesis:GetShardIterator"},
		targets: []string{"Stream", "StreamArn"}, when: "!UseEnhancedFanOut"},
	"ReadThroughConsumer": {actions: []string{"kinesis:DescribeStreamConsumer", "kinesis:SubscribeToShard"},
		targets: []string{"StreamConsumer"}, when: "UseEnhancedFanOut"},
	"DecryptStream": {actions: []string{"kms:Decrypt"}, targets: []string{"StreamKmsKeyArn"}, via: "kinesis",
		when: "HasStreamKmsKey"},
	"SendFailedBatches": {actions: []string{"sqs:SendMessage"}, targets: []string{"FailureQueue"}},
	"WriteAudit":        {actions: []string{"dynamodb:PutItem", "dynamodb:UpdateItem"}, targets: []string{"AuditTable"}, when: "AuditOn"},
	"ReadPulsarCredentials": {actions: []string{"secretsmanager:GetSecretValue"},
		targets: []string{"PulsarAuthSecret", "StackPulsarAuthSecret"}, when: "HasAuthSecret"},
	"DecryptPulsarCredentials": {actions: []string{"kms:Decrypt"}, targets: []string{"PulsarAuthSecretKmsKeyArn"},
		via: "secretsmanager", when: "HasAuthSecretKmsKey"},
	"ManageVpcInterfaces": {actions: []string{"ec2:AssignPrivateIpAddresses", "ec2:CreateNetworkInterface",
		"ec2:DeleteNetworkInterface", "ec2:DescribeNetworkInterfaces", "ec2:DescribeSubnets", "ec2:UnassignPrivateIpAddresses"},
		star: "Lambda creates and deletes the function's network interfaces in the given subnets; the Describe " +
			"actions support no resource ARN, and these are exactly AWSLambdaVPCAccessExecutionRole's",
		when: "HasVpc"},

	// With an S3 on-failure destination: the mapping writes objects under aws/lambda/ and
	// lists the bucket.
	"WriteFailedBatches": {actions: []string{"s3:ListBucket", "s3:PutObject"}, targets: []string{"FailureBucket"}, when: "FailuresToS3"},
}

// statement is one statement of a policy and the Fn::If branches it sits in ("C" or "!C").
type statement struct {
	body map[string]any
	when []string
}

// statements unwraps the Fn::If around statements, dropping AWS::NoValue branches.
func statements(v any, when []string) []statement {
	if c, yes, no, ok := ifArgs(v); ok {
		return append(statements(yes, append(slices.Clone(when), c)), statements(no, append(slices.Clone(when), "!"+c))...)
	}
	if isNoValue(v) {
		return nil
	}
	if l, ok := v.([]any); ok {
		var out []statement
		for _, e := range l {
			out = append(out, statements(e, when)...)
		}
		return out
	}
	return []statement{{asMap(v), when}}
}

// viaService is the condition that limits a KMS grant to requests a service makes for the role.
func viaService(service string) map[string]any {
	return map[string]any{"StringEquals": map[string]any{
		"kms:ViaService": map[string]any{"Fn::Sub": service + ".${AWS::Region}.amazonaws.com"}}}
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
	// Objects of a bucket of the stack: !Sub "${Bucket.Arn}/prefix/*".
	if sub, ok := asMap(v)["Fn::Sub"].(string); ok {
		if m := bucketObjects.FindStringSubmatch(sub); m != nil && tp.kind(m[1]) == "resource" {
			return []string{m[1]}, nil
		}
	}
	return nil, []string{fmt.Sprintf("resource %#v is not a Ref or GetAtt of the stack's own", v)}
}

// bucketObjects matches the ARN pattern of objects in a bucket of the stack.
var bucketObjects = regexp.MustCompile(`^\$\{([A-Za-z0-9]+)\.Arn\}/[A-Za-z0-9/_.-]*\*?$`)

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
	// The sink's role is checked by TestSinkRoleIsLeastPrivilege.
	if roles := tp.resourcesOfType("AWS::IAM::Role"); !slices.Equal(roles, []string{"KinesisToPulsarRole", sinkRoleID}) {
		t.Errorf("roles = %v, want only KinesisToPulsarRole and %s", roles, sinkRoleID)
	}
	role := tp.props(t, "KinesisToPulsarRole")
	if role["ManagedPolicyArns"] != nil {
		t.Error("KinesisToPulsarRole has ManagedPolicyArns: AWS managed policies grant on *")
	}

	seen := map[string]bool{}
	for _, pol := range asList(role["Policies"]) {
		for _, s := range statements(at(pol, "PolicyDocument", "Statement"), nil) {
			st := s.body
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
			if got := strings.Join(s.when, " and "); got != want.when {
				t.Errorf("%s: granted under %q, want %q", sid, got, want.when)
			}
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
				names = slices.Compact(names)
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

// mapping returns the logical id and properties of the one Kinesis event source mapping.
func mapping(t *testing.T, tp *tmpl) (string, map[string]any) {
	t.Helper()
	ids := tp.resourcesOfType("AWS::Lambda::EventSourceMapping")
	if len(ids) != 1 {
		t.Fatalf("event source mappings %v, want exactly one", ids)
	}
	return ids[0], tp.props(t, ids[0])
}

func TestEventSourceReportsItemFailuresAndKeepsFailedBatches(t *testing.T) {
	tp := loadTmpl(t)
	// A SAM event would add a second mapping, on the unqualified function.
	if ev := tp.props(t, functionID)["Events"]; ev != nil {
		t.Errorf("the function has Events %v: the mapping is the template's own resource", ev)
	}
	_, es := mapping(t, tp)
	if got := es["FunctionResponseTypes"]; !reflect.DeepEqual(got, []any{"ReportBatchItemFailures"}) {
		t.Errorf("FunctionResponseTypes = %#v, want [ReportBatchItemFailures]", got)
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
	// The on-failure destination: the stack's bucket when OnFailureDestination is S3, else its queue.
	destCond, toBucket, toQueue, ok := ifArgs(dest)
	if !ok || !reflect.DeepEqual(tp.conds[destCond], map[string]any{"Fn::Equals": []any{map[string]any{"Ref": "OnFailureDestination"}, "S3"}}) {
		t.Fatalf("DestinationConfig.OnFailure.Destination = %#v, want !If [<OnFailureDestination is S3>, bucket ARN, queue ARN]", dest)
	}
	bucket, attr, ok := getAtt(toBucket)
	if !ok || attr != "Arn" || asMap(tp.resources[bucket])["Type"] != "AWS::S3::Bucket" {
		t.Fatalf("S3 destination %#v, want the ARN of a bucket of the stack", toBucket)
	}
	b := tp.props(t, bucket)
	if at(b, "BucketEncryption", "ServerSideEncryptionConfiguration") == nil || at(b, "LifecycleConfiguration", "Rules") == nil ||
		at(b, "PublicAccessBlockConfiguration", "RestrictPublicBuckets") != true {
		t.Errorf("bucket %s: want encryption, a lifecycle rule and public access blocked", bucket)
	}
	// FailureBucketAlarm's FilterId: without this configuration S3 emits no metric for it.
	if want := []any{map[string]any{"Id": failedBatchesFilter, "Prefix": "aws/lambda/"}}; !reflect.DeepEqual(b["MetricsConfigurations"], want) {
		t.Errorf("bucket %s: MetricsConfigurations %#v, want %#v", bucket, b["MetricsConfigurations"], want)
	}
	res, attr, ok := getAtt(toQueue)
	if !ok || attr != "Arn" || asMap(tp.resources[res])["Type"] != "AWS::SQS::Queue" {
		t.Fatalf("SQS destination %#v, want the ARN of a queue of the stack", toQueue)
	}
	q := tp.props(t, res)
	if q["SqsManagedSseEnabled"] != true && q["KmsMasterKeyId"] == nil {
		t.Errorf("queue %s is not encrypted (SqsManagedSseEnabled or KmsMasterKeyId)", res)
	}
	// With EFO on, the mapping reads through the consumer, which reads the same stream.
	stream := es["EventSourceArn"]
	c, yes, no, ok := ifArgs(stream)
	if !ok {
		t.Fatalf("EventSourceArn = %#v, want !If [<EFO condition>, consumer ARN, stream ARN]", stream)
	}
	if r, a, ok := getAtt(yes); !ok || asMap(tp.resources[r])["Type"] != "AWS::Kinesis::StreamConsumer" || a != "ConsumerARN" {
		t.Errorf("EventSourceArn with %s = %#v, want the consumer's ConsumerARN", c, yes)
	} else if consumerStream := tp.props(t, r)["StreamARN"]; !reflect.DeepEqual(consumerStream, no) {
		t.Errorf("the consumer reads %#v, the mapping otherwise %#v", consumerStream, no)
	}
}

// Changing StartingPosition replaces the mapping, and CloudFormation creates the replacement before it
// deletes the old one; Lambda refuses a second mapping of one stream to one function ARN. The mapping
// therefore invokes an alias named after its starting position: a new position is a new function ARN.
func TestNewStartingPositionIsANewFunctionArn(t *testing.T) {
	tp := loadTmpl(t)
	_, es := mapping(t, tp)
	alias, ok := refName(es["FunctionName"])
	if !ok || asMap(tp.resources[alias])["Type"] != "AWS::Lambda::Alias" {
		t.Fatalf("mapping FunctionName = %#v, want !Ref <an AWS::Lambda::Alias>", es["FunctionName"])
	}
	a := tp.props(t, alias)
	if fn, ok := refName(a["FunctionName"]); !ok || fn != functionID || a["FunctionVersion"] != "$LATEST" {
		t.Errorf("alias %s: FunctionName %#v, FunctionVersion %#v; want !Ref %s and $LATEST", alias, a["FunctionName"], a["FunctionVersion"], functionID)
	}
	// The alias's name, evaluated for each starting position the mapping can be given: distinct for
	// distinct positions, and valid alias names.
	posParam, _ := refName(es["StartingPosition"])
	tsParam := ""
	if _, yes, _, ok := ifArgs(es["StartingPositionTimestamp"]); ok {
		tsParam, _ = refName(yes)
	}
	validAlias := regexp.MustCompile(`^[a-zA-Z0-9_-]{1,128}$`)
	names := map[string]string{}
	for _, pos := range asList(asMap(tp.params[posParam])["AllowedValues"]) {
		timestamps := []string{""}
		if pos == "AT_TIMESTAMP" {
			timestamps = []string{"1700000000", "1700000000.5", "1700000001"}
		}
		for _, ts := range timestamps {
			values := map[string]string{posParam: fmt.Sprint(pos), tsParam: ts}
			name, err := evalString(tp, a["Name"], values)
			if err != nil {
				t.Fatalf("alias Name: %v", err)
			}
			if !validAlias.MatchString(name) {
				t.Errorf("%v: alias name %q is not a valid alias name", values, name)
			}
			key := fmt.Sprint(values)
			if other, dup := names[name]; dup {
				t.Errorf("alias name %q for both %s and %s: the new mapping would collide with the old", name, other, key)
			}
			names[name] = key
		}
	}
	// Ignored timestamps do not rename the alias (that would replace the mapping for nothing).
	n1, _ := evalString(tp, a["Name"], map[string]string{posParam: "LATEST", tsParam: ""})
	n2, _ := evalString(tp, a["Name"], map[string]string{posParam: "LATEST", tsParam: "1700000000"})
	if n1 != n2 {
		t.Errorf("alias name changes with an ignored timestamp: %q, %q", n1, n2)
	}
}

// evalString evaluates the intrinsic functions a string property may use, with the given parameter
// values.
func evalString(tp *tmpl, v any, params map[string]string) (string, error) {
	if s, ok := v.(string); ok {
		return s, nil
	}
	fn, arg, ok := intrinsic(v)
	if !ok {
		return "", fmt.Errorf("%#v is not a string or an intrinsic function", v)
	}
	switch fn {
	case "Ref":
		name, _ := arg.(string)
		if val, ok := params[name]; ok {
			return val, nil
		}
		return "", fmt.Errorf("no value for %s", name)
	case "Fn::Sub":
		s, locals, _ := subString(v)
		var err error
		out := subVar.ReplaceAllStringFunc(s, func(m string) string {
			name := m[2 : len(m)-1]
			val, e := evalString(tp, map[string]any{"Ref": name}, params)
			if lv, ok := locals[name]; ok {
				val, e = evalString(tp, lv, params)
			}
			if e != nil {
				err = e
			}
			return val
		})
		return out, err
	case "Fn::Join":
		l := asList(arg)
		sep, _ := l[0].(string)
		parts, err := evalList(tp, l[1], params)
		return strings.Join(parts, sep), err
	case "Fn::If":
		c, yes, no, _ := ifArgs(v)
		holds, err := evalCond(tp, tp.conds[c], params)
		if err != nil {
			return "", err
		}
		if holds {
			return evalString(tp, yes, params)
		}
		return evalString(tp, no, params)
	}
	return "", fmt.Errorf("%s is not evaluated here", fn)
}

func evalList(tp *tmpl, v any, params map[string]string) ([]string, error) {
	if fn, arg, ok := intrinsic(v); ok && fn == "Fn::Split" {
		l := asList(arg)
		sep, _ := l[0].(string)
		s, err := evalString(tp, l[1], params)
		return strings.Split(s, sep), err
	}
	var out []string
	for _, e := range asList(v) {
		s, err := evalString(tp, e, params)
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, nil
}

func evalCond(tp *tmpl, v any, params map[string]string) (bool, error) {
	fn, arg, _ := intrinsic(v)
	l := asList(arg)
	switch fn {
	case "Fn::Equals":
		a, err1 := evalString(tp, l[0], params)
		b, err2 := evalString(tp, l[1], params)
		return a == b, errors.Join(err1, err2)
	case "Fn::Not":
		b, err := evalCond(tp, l[0], params)
		return !b, err
	case "Condition":
		name, _ := arg.(string)
		return evalCond(tp, tp.conds[name], params)
	}
	return false, fmt.Errorf("condition %#v is not evaluated here", v)
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

// Allowed dimension values outside our namespace: AWS/Lambda metrics of the function, the queue's
// depth, the records arriving on the stream.
var awsMetricDims = map[string]map[string]string{
	"AWS/Lambda":  {"FunctionName": "function"},
	"AWS/SQS":     {"QueueName": "queue"},
	"AWS/Kinesis": {"StreamName": "stream"},
	// Request metrics of the on-failure bucket's aws/lambda/ prefix (FailureBucketAlarm).
	"AWS/S3": {"BucketName": "bucket", "FilterId": "filter"},
}

// failedBatchesFilter is the on-failure bucket's metrics configuration for the objects Lambda writes.
const failedBatchesFilter = "FailedBatches"

// streamName is the name of the stream the mapping reads, the StreamName dimension of its metrics.
var streamName = map[string]any{"Fn::If": []any{"CreateStream", map[string]any{"Ref": "Stream"},
	map[string]any{"Fn::Select": []any{1, map[string]any{"Fn::Split": []any{":stream/", map[string]any{"Ref": "StreamArn"}}}}}}}

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
	subValue := map[string]string{"function": placeholder(tp, functionID), "queue": "SUB(FailureQueue.QueueName)", "stream": "STREAM",
		"bucket": fmt.Sprint(map[string]any{"Ref": "FailureBucket"}), "filter": failedBatchesFilter}
	nsValue := placeholder(tp, ns)
	for _, a := range tp.resourcesOfType("AWS::CloudWatch::Alarm") {
		if isSinkResource(tp, a) {
			continue // TestSinkDashboardAndAlarmsReadWhatTheSinkEmits
		}
		refs = append(refs, alarmMetrics(t, tp, a, ns, nsValue, fnName, queue)...)
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

// dashboardWidgets parses the source function's dashboard.
func dashboardWidgets(t *testing.T, tp *tmpl) []widget {
	t.Helper()
	return dashboardWidgetsOf(t, tp, "Dashboard")
}

// dashboardWidgetsOf parses a dashboard's body, with ${...} replaced by placeholders, and checks the
// structure CloudWatch expects.
func dashboardWidgetsOf(t *testing.T, tp *tmpl, id string) []widget {
	t.Helper()
	if asMap(tp.resources[id])["Type"] != "AWS::CloudWatch::Dashboard" {
		t.Fatalf("no dashboard %s", id)
	}
	body, locals, ok := subString(tp.props(t, id)["DashboardBody"])
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

// alarmMetrics checks an alarm's shape and returns its metrics (one, or those its metric math reads),
// with template values turned into the dashboard's placeholders so both compare alike.
func alarmMetrics(t *testing.T, tp *tmpl, id, ns, nsValue string, fnName, queue map[string]any) []metricRef {
	t.Helper()
	p := tp.props(t, id)
	where := "alarm " + id
	metric := func(where string, m map[string]any, stat any) metricRef {
		r := metricRef{where: where, dims: map[string]string{}}
		r.name, _ = m["MetricName"].(string)
		r.stat, _ = stat.(string)
		switch v := m["Namespace"].(type) {
		case string:
			r.namespace = v
		default:
			if name, ok := refName(v); ok && name == ns {
				r.namespace = nsValue
			} else {
				t.Errorf("%s: Namespace %#v is neither an AWS namespace nor the %s parameter", where, v, ns)
			}
		}
		for _, d := range asList(m["Dimensions"]) {
			k, _ := asMap(d)["Name"].(string)
			switch v := asMap(d)["Value"]; {
			case reflect.DeepEqual(v, fnName):
				r.dims[k] = placeholder(tp, functionID)
			case reflect.DeepEqual(v, queue):
				r.dims[k] = "SUB(FailureQueue.QueueName)"
			case reflect.DeepEqual(v, streamName):
				r.dims[k] = "STREAM"
			default:
				r.dims[k] = fmt.Sprintf("%v", v)
			}
		}
		return r
	}
	var out []metricRef
	if math := asList(p["Metrics"]); len(math) > 0 {
		for _, q := range math {
			if ms := asMap(asMap(q)["MetricStat"]); ms != nil {
				out = append(out, metric(fmt.Sprintf("%s %v", where, asMap(q)["Id"]), asMap(ms["Metric"]), ms["Stat"]))
			}
		}
	} else {
		out = append(out, metric(where, p, p["Statistic"]))
	}
	for _, key := range []string{"AlarmActions", "OKActions"} {
		if p[key] == nil {
			t.Errorf("%s: no %s: with AlarmTopicArn set, every alarm notifies it", where, key)
			continue
		}
		c, yes, no, ok := ifArgs(p[key])
		var topic string
		if l := asList(yes); len(l) == 1 {
			topic, _ = refName(l[0])
		}
		if !ok || !isNoValue(no) || tp.params[topic] == nil {
			t.Errorf("%s: %s = %#v, want !If [<topic given>, [!Ref <topic parameter>], !Ref AWS::NoValue]", where, key, p[key])
			continue
		}
		if !strings.Contains(fmt.Sprint(tp.conds[c]), "map[Ref:"+topic+"]") {
			t.Errorf("%s: %s under condition %s, which does not test %s", where, key, c, topic)
		}
	}
	return out
}

func TestAlarmsCoverTheFailureModes(t *testing.T) {
	tp := loadTmpl(t)
	byMetric := map[string]map[string]any{}
	for _, id := range tp.resourcesOfType("AWS::CloudWatch::Alarm") {
		p := tp.props(t, id)
		if name, ok := p["MetricName"].(string); ok {
			byMetric[name] = p
		}
	}
	isParam := func(v any) bool { name, ok := refName(v); return ok && tp.params[name] != nil }
	for _, tc := range []struct {
		metric, stat, comparison string
		threshold                any // a literal, or "param" for a Ref to a parameter
	}{
		{"IteratorAge", "Maximum", "GreaterThanThreshold", "param"},
		{"RecordsFailed", "Sum", "GreaterThanThreshold", 0},
		{"RecordsDeadLettered", "Sum", "GreaterThanThreshold", 0},
		{"AuditWriteErrors", "Sum", "GreaterThanThreshold", 0},
		{"DeadlineStops", "Sum", "GreaterThanThreshold", 0},
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
			if !isParam(p["Threshold"]) {
				t.Errorf("%s alarm: Threshold %#v, want a Ref to a parameter", tc.metric, p["Threshold"])
			}
		} else if !reflect.DeepEqual(p["Threshold"], tc.threshold) {
			t.Errorf("%s alarm: Threshold %#v, want %v", tc.metric, p["Threshold"], tc.threshold)
		}
	}
	// M of N: a quiet minute between failing ones must not reset the alarm.
	if p := byMetric["RecordsFailed"]; p != nil {
		if !isParam(p["EvaluationPeriods"]) || !isParam(p["DatapointsToAlarm"]) || reflect.DeepEqual(p["EvaluationPeriods"], p["DatapointsToAlarm"]) {
			t.Errorf("RecordsFailed alarm: EvaluationPeriods %#v, DatapointsToAlarm %#v; want two parameters (M of N)", p["EvaluationPeriods"], p["DatapointsToAlarm"])
		}
		if p["TreatMissingData"] != "notBreaching" {
			t.Errorf("RecordsFailed alarm: TreatMissingData %v, want notBreaching (no invocation, no failure)", p["TreatMissingData"])
		}
	}
}

// A mapping that never invokes while records arrive: metric math on the stream's IncomingRecords and
// the function's Invocations, notifying only while the template wants the mapping on.
func TestMappingIdleAlarm(t *testing.T) {
	tp := loadTmpl(t)
	var found bool
	for _, id := range tp.resourcesOfType("AWS::CloudWatch::Alarm") {
		p := tp.props(t, id)
		queries := asList(p["Metrics"])
		if len(queries) == 0 {
			continue
		}
		found = true
		byID := map[string]map[string]any{}
		var expr string
		for _, q := range queries {
			q := asMap(q)
			qid, _ := q["Id"].(string)
			byID[qid] = q
			if e, ok := q["Expression"].(string); ok && q["ReturnData"] == true {
				expr = e
			}
		}
		metricID := func(ns, name string) string {
			for qid, q := range byID {
				m := at(q, "MetricStat", "Metric")
				if at(m, "Namespace") == ns && at(m, "MetricName") == name && q["ReturnData"] == false {
					return qid
				}
			}
			return ""
		}
		incoming, invocations := metricID("AWS/Kinesis", "IncomingRecords"), metricID("AWS/Lambda", "Invocations")
		if incoming == "" || invocations == "" {
			t.Fatalf("%s: want AWS/Kinesis IncomingRecords and AWS/Lambda Invocations (ReturnData false), got %v", id, queries)
		}
		want := fmt.Sprintf("IF(FILL(%s, 0) > 0 AND FILL(%s, 0) == 0, 1, 0)", incoming, invocations)
		if expr != want {
			t.Errorf("%s: expression %q, want %q", id, expr, want)
		}
		for _, q := range []string{incoming, invocations} {
			if at(byID[q], "MetricStat", "Stat") != "Sum" {
				t.Errorf("%s: %s Stat %v, want Sum", id, q, at(byID[q], "MetricStat", "Stat"))
			}
		}
		if p["ComparisonOperator"] != "GreaterThanThreshold" || p["Threshold"] != 0 || p["TreatMissingData"] != "notBreaching" {
			t.Errorf("%s: %v %v, missing data %v; want GreaterThanThreshold 0, notBreaching", id, p["ComparisonOperator"], p["Threshold"], p["TreatMissingData"])
		}
		c, yes, no, ok := ifArgs(p["ActionsEnabled"])
		if !ok || yes != true || no != false || !strings.Contains(fmt.Sprint(tp.conds[c]), "EventSourceEnabled") {
			t.Errorf("%s: ActionsEnabled %#v, want !If [<EventSourceEnabled is true>, true, false]", id, p["ActionsEnabled"])
		}
	}
	if !found {
		t.Error("no metric-math alarm on records arriving without invocations")
	}
}

func TestOutputs(t *testing.T) {
	tp := loadTmpl(t)
	for _, tc := range []struct{ output, condition string }{
		{"FunctionArn", ""}, {"AuditTableName", "AuditOn"}, {"FailureQueueUrl", ""}, {"DashboardUrl", ""},
		{"KinesisStreamArn", ""}, {"StreamConsumerArn", "UseEnhancedFanOut"}, {"FailureBucketName", "FailuresToS3"},
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

// Values CloudFormation accepts must be values the services accept: what would deploy and then fail
// is refused by the parameter's constraints.
func TestParametersRefuseWhatDeploysAndThenFails(t *testing.T) {
	tp := loadTmpl(t)
	const secret = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:pulsar/token"
	for _, tc := range []struct {
		param        string
		accept, deny []string
	}{
		// Lambda takes -1 or 60 to 604800.
		{"MaximumRecordAgeInSeconds",
			[]string{"-1", "60", "61", "99", "100", "3600", "99999", "100000", "599999", "600000", "604799", "604800"},
			[]string{"", "0", "1", "59", "-2", "060", "604801", "605000", "700000", "1000000", "60.5"}},
		// The role grants the ARN exactly: a partial ARN (no "-" and 6 characters) would be denied.
		{"PulsarAuthSecret",
			[]string{"", "create", secret + "-AbC123", "arn:aws-cn:secretsmanager:cn-north-1:123456789012:secret:x-abcdef"},
			[]string{secret, secret + "-AbC12", "arn:aws:secretsmanager:eu-west-1:123456789012:secret:-AbC123", "created"}},
	} {
		p := asMap(tp.params[tc.param])
		for _, v := range tc.accept {
			if err := allowed(p, v); err != nil {
				t.Errorf("%s=%q: %v, want accepted", tc.param, v, err)
			}
		}
		for _, v := range tc.deny {
			if allowed(p, v) == nil {
				t.Errorf("%s=%q accepted, want refused", tc.param, v)
			}
		}
		if p["ConstraintDescription"] == nil {
			t.Errorf("%s: no ConstraintDescription to say what is expected", tc.param)
		}
	}
}
