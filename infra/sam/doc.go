// Package sam keeps template.yaml, samconfig.toml and the SAM build honest: its tests check the
// template's wiring against the code's contract (the environment variables config reads, the metrics
// and dimensions metrics emits, the audit table's key schema), and CheckLambdaBinary verifies what
// `sam build` produced. sam.mk runs the AWS tools (sam validate, cfn-lint, sam build) on top. The
// integration test TestTemplateDeploysInMoto has deploycheck.py create the translated template in moto's
// CloudFormation for several parameter combinations and check what moto keeps.
package sam
