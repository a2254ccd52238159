import { EmulatedQueryApi } from './emulated-query-api';

/** The listener the emulated Elastic Load Balancing API describes. */
export interface EmulatedListener {
  readonly arn: string;
  readonly loadBalancerArn: string;
  readonly port: number;
  readonly protocol: string;
}

/**
 * A stub of the two AWS API actions the golden-request hook calls to find the load balancer:
 * Elastic Load Balancing's DescribeListeners and EC2's DescribeNetworkInterfaces (both AWS's
 * query protocol, XML answers), on 127.0.0.1. The load balancer's network interfaces all have the
 * address 127.0.0.1, so the hook's requests reach a real server there. It records every call.
 */
export class EmulatedLoadBalancer extends EmulatedQueryApi {
  listener?: EmulatedListener;

  env(): Record<string, string> {
    return { AWS_ENDPOINT_URL_EC2: this.url, AWS_ENDPOINT_URL_ELASTIC_LOAD_BALANCING_V2: this.url };
  }

  protected answer(action: string, params: URLSearchParams): [number, string] {
    const elb = 'xmlns="http://elasticloadbalancing.amazonaws.com/doc/2015-12-01/"';
    const l = this.listener;
    if (action === 'DescribeListeners') {
      if (!l || params.get('ListenerArns.member.1') !== l.arn) {
        return [400, `<ErrorResponse ${elb}><Error><Type>Sender</Type><Code>ListenerNotFound</Code><Message>One or more listeners not found</Message></Error><RequestId>r</RequestId></ErrorResponse>`];
      }
      return [200, `<DescribeListenersResponse ${elb}><DescribeListenersResult><Listeners><member><ListenerArn>${l.arn}</ListenerArn>` +
        `<LoadBalancerArn>${l.loadBalancerArn}</LoadBalancerArn><Port>${l.port}</Port><Protocol>${l.protocol}</Protocol></member></Listeners>` +
        '</DescribeListenersResult><ResponseMetadata><RequestId>r</RequestId></ResponseMetadata></DescribeListenersResponse>'];
    }
    if (action === 'DescribeNetworkInterfaces') {
      const wanted = params.get('Filter.1.Name') === 'description' ? params.get('Filter.1.Value.1') : undefined;
      const description = l && `ELB ${l.loadBalancerArn.split(':loadbalancer/')[1]}`;
      const items = wanted && wanted === description
        ? ['eni-0a', 'eni-0b'].map((id) => `<item><networkInterfaceId>${id}</networkInterfaceId><description>${description}</description><privateIpAddress>127.0.0.1</privateIpAddress></item>`).join('')
        : '';
      return [200, `<DescribeNetworkInterfacesResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/"><requestId>r</requestId><networkInterfaceSet>${items}</networkInterfaceSet></DescribeNetworkInterfacesResponse>`];
    }
    return [400, `<ErrorResponse ${elb}><Error><Type>Sender</Type><Code>InvalidAction</Code><Message>no ${action} here</Message></Error></ErrorResponse>`];
  }
}
