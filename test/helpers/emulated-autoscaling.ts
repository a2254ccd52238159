import * as http from 'node:http';
import { EmulatedQueryApi } from './emulated-query-api';

/** An instance of the emulated group. */
export interface EmulatedInstance {
  readonly id: string;
  protectedFromScaleIn: boolean;
}

/**
 * A stub of the two EC2 Auto Scaling API actions the GPU service's release function calls
 * (DescribeAutoScalingGroups, SetInstanceProtection; AWS's query protocol, XML answers), and of
 * CloudFormation's presigned response URL, on 127.0.0.1. It records every call and response.
 */
export class EmulatedAutoScaling extends EmulatedQueryApi {
  readonly groups = new Map<string, EmulatedInstance[]>();
  readonly responses: any[] = [];
  /** Answers SetInstanceProtection with this error code, when set. */
  failWith?: string;

  env(): Record<string, string> {
    return { AWS_ENDPOINT_URL_AUTO_SCALING: this.url, AWS_REGION: 'eu-west-1', AWS_ACCESS_KEY_ID: 'AKIATEST', AWS_SECRET_ACCESS_KEY: 'secret' };
  }

  /** CloudFormation's presigned response URL. */
  protected takeOther(req: http.IncomingMessage, body: string, res: http.ServerResponse): boolean {
    if (req.method !== 'PUT' || !req.url!.startsWith('/cloudformation-response')) return false;
    this.responses.push({ contentType: req.headers['content-type'], ...JSON.parse(body) });
    res.writeHead(200).end();
    return true;
  }

  protected answer(action: string, params: URLSearchParams): [number, string] {
    const ns = 'xmlns="http://autoscaling.amazonaws.com/doc/2011-01-01/"';
    if (action === 'DescribeAutoScalingGroups') {
      const name = params.get('AutoScalingGroupNames.member.1')!;
      const instances = this.groups.get(name);
      const members = instances === undefined ? '' : `<member><AutoScalingGroupName>${name}</AutoScalingGroupName><Instances>${instances.map((i) =>
        `<member><InstanceId>${i.id}</InstanceId><ProtectedFromScaleIn>${i.protectedFromScaleIn}</ProtectedFromScaleIn><LifecycleState>InService</LifecycleState></member>`).join('')}</Instances></member>`;
      return [200, `<DescribeAutoScalingGroupsResponse ${ns}><DescribeAutoScalingGroupsResult><AutoScalingGroups>${members}</AutoScalingGroups></DescribeAutoScalingGroupsResult><ResponseMetadata><RequestId>r</RequestId></ResponseMetadata></DescribeAutoScalingGroupsResponse>`];
    }
    if (action === 'SetInstanceProtection') {
      if (this.failWith) {
        return [400, `<ErrorResponse ${ns}><Error><Type>Sender</Type><Code>${this.failWith}</Code><Message>Rate exceeded</Message></Error><RequestId>r</RequestId></ErrorResponse>`];
      }
      const group = this.groups.get(params.get('AutoScalingGroupName')!) ?? [];
      const ids = [...params.entries()].filter(([k]) => k.startsWith('InstanceIds.member.')).map(([, v]) => v);
      for (const instance of group) if (ids.includes(instance.id)) instance.protectedFromScaleIn = params.get('ProtectedFromScaleIn') === 'true';
      return [200, `<SetInstanceProtectionResponse ${ns}><SetInstanceProtectionResult/><ResponseMetadata><RequestId>r</RequestId></ResponseMetadata></SetInstanceProtectionResponse>`];
    }
    return [400, `<ErrorResponse ${ns}><Error><Type>Sender</Type><Code>InvalidAction</Code><Message>no ${action} here</Message></Error></ErrorResponse>`];
  }
}
